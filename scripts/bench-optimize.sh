#!/usr/bin/env bash
# Benchmarks the optimizer's DP and HiGHS plan solvers side by side for
# horizons 60, 600 and 3600 s and max_replicas 10, 100 and 1000, and prints a
# table of time per solve and the DP/HiGHS time ratio. HiGHS sizes that do
# not prove optimality within 30 s are shown as skipped.
# Usage: scripts/bench-optimize.sh   (BENCHTIME=3x to change go test -benchtime)
set -euo pipefail
cd "$(dirname "$0")/.."
highs=${HIGHS:-$PWD/.cache/highs}
if ! pkg-config --exists highs 2>/dev/null; then
  export PKG_CONFIG_PATH="$highs/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export CGO_LDFLAGS="-Wl,-rpath,$highs/lib"
  export LD_LIBRARY_PATH="$highs/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
raw=$(go test ./optimize/ -run '^$' -bench '^BenchmarkSolve$' -benchtime "${BENCHTIME:-1s}" -v 2>&1) || { echo "$raw" >&2; exit 1; }
echo "$raw" | awk '
  function fmt(ns) {
    if (ns >= 1e9) return sprintf("%.2f s", ns / 1e9)
    if (ns >= 1e6) return sprintf("%.2f ms", ns / 1e6)
    return sprintf("%.1f us", ns / 1e3)
  }
  /^BenchmarkSolve\/horizon=[0-9]+\/max=[0-9]+\/(dp|highs)-?[0-9]*[ \t]/ {
    split($1, part, "/"); sub(/-[0-9]+$/, "", part[4])
    h = substr(part[2], 9); m = substr(part[3], 5)
    for (i = 2; i <= NF; i++) if ($(i+1) == "ns/op") t[h, m, part[4]] = $i
    if (!((h, m) in seen)) { seen[h, m] = 1; order[++n] = h SUBSEP m }
  }
  /--- SKIP: BenchmarkSolve\/horizon=/ {
    split($3, part, "/"); h = substr(part[2], 9); m = substr(part[3], 5)
    skip[h, m, part[4]] = 1
    if (!((h, m) in seen)) { seen[h, m] = 1; order[++n] = h SUBSEP m }
  }
  END {
    printf "%-9s %-13s %-12s %-22s %s\n", "horizon", "max_replicas", "DP", "HiGHS", "DP/HiGHS"
    for (k = 1; k <= n; k++) {
      split(order[k], hm, SUBSEP); h = hm[1]; m = hm[2]
      dp = ((h, m, "dp") in t) ? fmt(t[h, m, "dp"]) : "-"
      if ((h, m, "highs") in t) { hs = fmt(t[h, m, "highs"]); r = ((h, m, "dp") in t) ? sprintf("%.2g", t[h, m, "dp"] / t[h, m, "highs"]) : "-" }
      else if ((h, m, "highs") in skip) { hs = "skipped (>30 s)"; r = "-" }
      else { hs = "-"; r = "-" }
      printf "%-9s %-13s %-12s %-22s %s\n", h " s", m, dp, hs, r
    }
  }'
