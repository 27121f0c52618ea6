#!/usr/bin/env bash
# Builds the container images kvmesh-router:dev, kvmesh-node:dev and kvmesh-nats:dev from
# deploy/docker/*.Dockerfile: static binaries (CGO_ENABLED=0, -trimpath) of cmd/router,
# cmd/node and the nats-server module go.mod pins, each in a FROM-scratch image. Nothing
# is pulled: the images hold only what this script builds.
#
#   scripts/images.sh [TAG]     TAG defaults to dev
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-dev}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
export CGO_ENABLED=0
go build -trimpath -ldflags='-s -w' -o "$ctx/" ./cmd/router ./cmd/node
go build -trimpath -ldflags='-s -w' -o "$ctx/nats-server" github.com/nats-io/nats-server/v2
for img in router node nats; do
  # One context for all three: each Dockerfile copies its own binary.
  if ! out=$(docker build -q -f "deploy/docker/$img.Dockerfile" -t "kvmesh-$img:$tag" "$ctx" 2>&1); then
    echo "$out" >&2
    exit 1
  fi
  echo "kvmesh-$img:$tag $(docker image inspect -f '{{.Size}}' "kvmesh-$img:$tag" | awk '{printf "%.1f MB", $1/1e6}')"
done
