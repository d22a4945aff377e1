#!/usr/bin/env bash
# bench-demo-phases.sh BIN: make bench-live's comparison in replay, from ten
# phases of the demo's day. One 20-minute live run depends on the phase of
# the day it starts at (its replica-seconds ratio moved 1.15-1.38x over the
# recorded runs); replaying the demo's load from ten starting phases, 60 s
# apart, and summing gives a figure that does not. Each replay is the
# README's cold-start command: no history, a 10 s rate, replicas serving
# 3 s after they are asked for, bench-a's policy, and target-value set as
# the live peer (10 requests/s per replica over a 10 s rate). The oracle
# (the same cost model solved on the true future) is printed beside them:
# what perfect foresight would have used is the bar a causal forecast
# cannot pass, so it says how much room each live goal leaves.
set -euo pipefail
bin=${1:?usage: bench-demo-phases.sh BIN}
policy=$(dirname "$0")/../backtest/testdata/policies/demo.hcl
declare -A rs unmet flaps cost
for s in predictive target-value oracle; do rs[$s]=0 unmet[$s]=0 flaps[$s]=0 cost[$s]=0; done
printf '%6s  %-12s %15s %14s %6s %8s\n' start strategy replica_seconds unmet_requests flaps cost
for start in 0 60 120 180 240 300 360 420 480 540; do
  out=$("$bin" backtest --trace synthetic:demo:0.125 --start "$start" --duration 20m --history 0 \
    --rate-window 10 --startup-delay 3 --min 1 --max 12 --tv-target 1 --tv-window 10s \
    --policy "$policy" --strategies predictive,target-value,oracle 2>/dev/null)
  for s in predictive target-value oracle; do
    # The table's columns: strategy, replica-seconds, unmet, violation
    # seconds, actions, flaps, cost.
    read -r r u f c < <(awk -v s="$s" '$1 == s { print $2, $3, $6, $7; exit }' <<<"$out")
    if [[ -z ${c:-} ]]; then
      echo "no $s row in the replay from ${start}s" >&2
      exit 1
    fi
    printf '%5ss  %-12s %15s %14s %6s %8s\n' "$start" "$s" "$r" "$u" "$f" "$c"
    rs[$s]=$((rs[$s] + r)) unmet[$s]=$((unmet[$s] + u)) flaps[$s]=$((flaps[$s] + f)) cost[$s]=$((cost[$s] + c))
  done
done
echo
echo "summed over the ten phases:"
for s in predictive target-value oracle; do
  printf '        %-12s %15s %14s %6s %8s\n' "$s" "${rs[$s]}" "${unmet[$s]}" "${flaps[$s]}" "${cost[$s]}"
done
awk -v r="${rs[predictive]}" -v rt="${rs[target-value]}" -v u="${unmet[predictive]}" -v ut="${unmet[target-value]}" \
  -v f="${flaps[predictive]}" -v ft="${flaps[target-value]}" -v c="${cost[predictive]}" -v ct="${cost[target-value]}" \
  -v ro="${rs[oracle]}" -v uo="${unmet[oracle]}" -v co="${cost[oracle]}" 'BEGIN {
  printf "predictive against target-value: unmet %.3fx (goal <= 0.5x), replica-seconds %.3fx (goal <= 1.0x), flaps %d against %d, cost %.3fx\n", u / ut, r / rt, f, ft, c / ct
  printf "oracle against target-value:     unmet %.3fx, replica-seconds %.3fx, cost %.3fx; predictive cost %.3fx the oracle\x27s\n", uo / ut, ro / rt, co / ct, c / co
}'
