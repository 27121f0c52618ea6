#!/usr/bin/env bash
# The container cluster of deploy/compose/docker-compose.yml (project "kvmesh"): NATS, two
# routers and four workers forming two pipelines, on the private Docker network "kvmesh".
#
#   scripts/compose.sh up        build the images (scripts/images.sh), start the cluster,
#                                wait until both routers route both pipelines; print
#                                router-1's base URL last (http://127.0.0.1:8080)
#   scripts/compose.sh status    every container with its state and health, and the
#                                cluster as router-1 sees it
#   scripts/compose.sh logs [SERVICE...]   the containers' logs
#   scripts/compose.sh down      remove the containers, the network and the volumes
#
# KVMESH_SKIP_IMAGES=1 skips the image build (the chaos suite builds them once).
set -euo pipefail
cd "$(dirname "$0")/.."
compose=(docker-compose -p kvmesh -f deploy/compose/docker-compose.yml)
routers=(http://127.0.0.1:8080 http://127.0.0.1:8081)

die() { echo "compose.sh: $*" >&2; exit 1; }

# routed URL: how many leaders the router at URL routes to.
routed() {
  curl -fs --max-time 2 "$1/cluster" 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for m in json.load(sys.stdin)["members"] if m["routed"]))' 2>/dev/null || echo 0
}

up() {
  [ "${KVMESH_SKIP_IMAGES:-}" = 1 ] || scripts/images.sh
  "${compose[@]}" up -d --remove-orphans >&2
  local deadline=$((SECONDS + 120))
  for url in "${routers[@]}"; do
    until [ "$(routed "$url")" = 2 ]; do
      [ $SECONDS -lt $deadline ] || { "${compose[@]}" ps >&2; die "$url does not route both pipelines after 120 s; see scripts/compose.sh logs"; }
      sleep 0.5
    done
  done
  echo "${routers[0]}"
}

status() {
  "${compose[@]}" ps
  curl -fs --max-time 2 "${routers[0]}/cluster" | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    kv = "%d/%d blocks free" % (m["free_blocks"], m["total_blocks"]) if m["total_blocks"] else ""
    print("%-10s %-7s layers %-5s pipeline %-3s %-8s %s%s" % (m["id"], m["role"], m.get("layers", "-"), m.get("pipeline", "-"), m["state"], kv, " routed" if m["routed"] else ""))
' || echo "router-1 does not answer on ${routers[0]}"
}

case "${1:-}" in
  up) up ;;
  status) status ;;
  logs) shift; "${compose[@]}" logs --no-color "$@" ;;
  down) "${compose[@]}" down --volumes --remove-orphans --timeout 15 ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
