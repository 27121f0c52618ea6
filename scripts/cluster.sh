#!/usr/bin/env bash
# The local multi-process cluster: one router and N workers as real processes on loopback.
#
#   scripts/cluster.sh up N [STAGES]   build, start a router and N workers, wait until the
#                                      router serves; print the router's base URL last.
#                                      Workers form pipelines of STAGES stages (default 2);
#                                      workers left over start without a layer range and
#                                      placement gives them one.
#   scripts/cluster.sh status          every node: id, layers, pipeline, state, KV use
#   scripts/cluster.sh kill ID         SIGKILL the node ID (worker-1, router-1, ...)
#   scripts/cluster.sh start ID        start worker ID again, without a layer range
#   scripts/cluster.sh down            stop everything
#
# Logs, pids, the workers' swap files (the disk tier of their layers, ID.swap) and the
# binaries live in $KVMESH_CLUSTER_DIR (default .cluster/).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${KVMESH_CLUSTER_DIR:-.cluster}
model=${KVMESH_MODEL:-models/stories260K.bin}
tok=${KVMESH_TOKENIZER:-models/tok512.bin}
layers=$(od -An -t d4 -j 8 -N 4 "$model" | tr -d ' ')

die() { echo "cluster.sh: $*" >&2; exit 1; }

# wait_line FILE PATTERN: wait up to 30 s for a line matching PATTERN in FILE.
wait_line() {
  for _ in $(seq 300); do
    grep -m1 -E "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "timed out waiting for '$2' in $1"
}

router_field() { grep -m1 -oE "$1=[^ ]+" "$dir/router-1.out" | cut -d= -f2-; }

start_worker() { # id [range pipeline]
  local id=$1 args=()
  [ $# -ge 3 ] && args=(--layers "$2" --pipeline "$3")
  "$dir/bin/node" --id "$id" --model "$model" --seeds "$(router_field gossip)" --nats "$(router_field nats)" \
    --swap "$dir/$id.swap" "${args[@]}" >"$dir/$id.out" 2>"$dir/$id.log" &
  echo $! >"$dir/$id.pid"
}

up() {
  local n=${1:-4} stages=${2:-2}
  [ -e "$dir/router-1.pid" ] && kill -0 "$(cat "$dir/router-1.pid")" 2>/dev/null && die "already up; run down first"
  mkdir -p "$dir/bin"
  go build -o "$dir/bin/" ./cmd/node ./cmd/router
  "$dir/bin/router" --id router-1 --model "$model" --tokenizer "$tok" --http 127.0.0.1:0 \
    --gossip 127.0.0.1:0 --nats-listen 127.0.0.1:0 >"$dir/router-1.out" 2>"$dir/router-1.log" &
  echo $! >"$dir/router-1.pid"
  wait_line "$dir/router-1.out" '^url=' >/dev/null
  local per=$(( (layers + stages - 1) / stages )) i=0 p=0
  while [ $(( i + stages )) -le "$n" ]; do
    for s in $(seq 0 $((stages - 1))); do
      i=$((i + 1))
      local first=$((s * per)) last=$(( (s + 1) * per ))
      [ "$last" -gt "$layers" ] && last=$layers
      [ "$s" -eq $((stages - 1)) ] && last=$layers
      start_worker "worker-$i" "$first:$last" "p$p"
    done
    p=$((p + 1))
  done
  while [ "$i" -lt "$n" ]; do i=$((i + 1)); start_worker "worker-$i"; done
  for w in $(seq 1 "$n"); do wait_line "$dir/worker-$w.out" '^ready' >/dev/null; done
  local url; url=$(router_field url)
  for _ in $(seq 300); do
    if curl -fs "$url/readyz" >/dev/null 2>&1; then echo "$url"; return 0; fi
    sleep 0.1
  done
  die "the router did not become ready; see $dir/*.log"
}

status() {
  local url; url=$(router_field url)
  for f in "$dir"/*.pid; do
    local id; id=$(basename "$f" .pid)
    local pid state; pid=$(cat "$f")
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    if [ -n "$state" ] && [ "$state" != Z ]; then echo "$id pid $pid running"; else echo "$id pid $pid dead"; fi
  done
  curl -fs "$url/cluster" | python3 -c '
import json, sys
for m in json.load(sys.stdin)["members"]:
    kv = "%d/%d blocks free" % (m["free_blocks"], m["total_blocks"]) if m["total_blocks"] else ""
    print("%-10s %-7s layers %-5s pipeline %-3s %-8s %s%s" % (m["id"], m["role"], m.get("layers", "-"), m.get("pipeline", "-"), m["state"], kv, " routed" if m["routed"] else ""))
' 2>/dev/null || curl -fs "$url/cluster"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  status) status ;;
  kill) [ -n "${2:-}" ] || die "kill needs an id"; kill -9 "$(cat "$dir/$2.pid")" ;;
  start) [ -n "${2:-}" ] || die "start needs an id"; start_worker "$2"; wait_line "$dir/$2.out" '^ready' ;;
  down) for f in "$dir"/*.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; done ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
