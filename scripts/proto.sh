#!/usr/bin/env bash
# Regenerates the Go code of proto/ from its .proto files with protoc (Debian's
# protobuf-compiler, installed when missing) and the plugin versions pinned as tool
# dependencies in go.mod. The generated code is committed; run this after editing a
# .proto file. leader's TestProtoUpToDate checks that the committed code matches.
#
#   scripts/proto.sh            regenerate in place
#   scripts/proto.sh OUTDIR     generate into OUTDIR instead (for the up-to-date check)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-proto}"

if ! command -v protoc >/dev/null; then
	echo "proto.sh: installing protoc (protobuf-compiler)" >&2
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq protobuf-compiler
fi

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
go build -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
export PATH="$bin:$PATH"

mkdir -p "$out"
files=$(cd proto && find . -name '*.proto' | sed 's|^\./||' | sort)
protoc -I proto \
	--go_out="$out" --go_opt=paths=source_relative \
	--go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
	$files
