#!/usr/bin/env bash
# Runs every test (unit and integration, race detector on) and prints how many ran.
set -euo pipefail
test -x "${NOMADSCALERD_NOMAD_BIN:?set by the Makefile}"
go vet ./...
bad=$(gofmt -l $(git ls-files '*.go') || true)
[ -z "$bad" ] || { echo "gofmt needed: $bad"; exit 1; }
# Processes of the test agents' Nomad binary orphaned to init (logmon
# plugins, executors): a test run must leave none behind.
orphans() {
  ps -eo pid=,ppid=,args= | awk -v bin="$NOMADSCALERD_NOMAD_BIN" '$2 == 1 && $3 == bin && $4 != "agent" {print $1}' | sort
}
before=$(orphans)
out=$(mktemp); trap 'rm -f "$out"' EXIT
set +e
go test -race -count=1 -parallel 4 -timeout 18m -json ./... > "$out"
rc=$?
# The Nomadscaler plugin is a module of its own: ./... above does not reach it.
(cd cmd/nomadscaler && go vet ./... && go test -race -count=1 -json ./...) >> "$out" || rc=1
set -e
# Human-readable failures, then a count of what ran.
go run ./scripts/testsummary < "$out" || true
left=$(comm -13 <(echo "$before") <(orphans) | grep . || true)
if [ -n "$left" ]; then
  echo "the tests left $(echo "$left" | wc -l) Nomad plugin processes behind (killed now):"
  for pid in $left; do ps -o pid=,args= -p "$pid" | cut -c1-120 || true; kill -9 "$pid" 2>/dev/null || true; done
  [ "$rc" -ne 0 ] || rc=1
fi
exit $rc
