#!/usr/bin/env bash
# The chaos suite against the container cluster (deploy/compose/docker-compose.yml):
# builds the images, runs `go test -tags chaos ./e2e -run Chaos`, which starts the cluster,
# injects every scenario's fault under a load of streaming requests and checks that no
# request is lost and every output equals the reference, then writes the figures and the
# report. The cluster is removed however the run ends.
#
#   scripts/chaos.sh --short      a few iterations of every scenario (CI: .ci/run)
#   scripts/chaos.sh --soak N     N iterations of every scenario
#
# Figures: $KVMESH_CHAOS_OUT (default .chaos/results.json), the report made from them
# beside it (.chaos/results.md; copied to docs/reliability.md when KVMESH_CHAOS_REPORT=1
# and the suite passed), the test output in .chaos/results.log.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=2
case "${1:---short}" in
  --short) iterations=2 ;;
  --soak) iterations=${2:?--soak needs N}; [ "$iterations" -gt 0 ] || { echo "chaos.sh: --soak N, N > 0" >&2; exit 2; } ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
out=${KVMESH_CHAOS_OUT:-.chaos/results.json}
mkdir -p "$(dirname "$out")"
trap 'scripts/compose.sh down >/dev/null 2>&1 || true' EXIT
scripts/images.sh
timeout=$((20 + iterations * 8))m
log=${out%.json}.log
set +e
report=${out%.json}.md
go test -tags chaos -count=1 -timeout "$timeout" ./e2e -run Chaos -v \
  -chaos.iterations "$iterations" -chaos.out "$(realpath "$out")" \
  -chaos.report "$(realpath "$report")" -chaos.command "scripts/chaos.sh ${*:---short}" >"$log" 2>&1
status=$?
set -e
grep -E '^\s*(--- |[a-z_]+_test\.go:[0-9]+: |PASS|FAIL|ok )' "$log" | cut -c1-400 || true
[ "$status" = 0 ] || echo "chaos.sh: the suite failed; its whole output: $log, the containers' logs: .chaos/compose-logs.txt" >&2
if [ "${KVMESH_CHAOS_REPORT:-}" = 1 ] && [ "$status" = 0 ]; then cp "$report" docs/reliability.md; fi
exit "$status"
