#!/usr/bin/env bash
# Runs every test (unit and integration, race detector on) and prints how many ran.
set -euo pipefail
test -x "${NOMADSCALERD_NOMAD_BIN:?set by the Makefile}"
go vet ./...
bad=$(gofmt -l $(git ls-files '*.go') || true)
[ -z "$bad" ] || { echo "gofmt needed: $bad"; exit 1; }
out=$(mktemp); trap 'rm -f "$out"' EXIT
set +e
go test -race -count=1 -parallel 4 -timeout 18m -json ./... > "$out"
rc=$?
set -e
# Human-readable failures, then a count of what ran.
go run ./scripts/testsummary < "$out" || true
exit $rc
