#!/usr/bin/env bash
# The project's test command: what README.md names and .ci/run calls.
# Runs vet and the default test suite (fuzz targets run on their seed corpora).
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
go test -count=1 -timeout 15m ./...
