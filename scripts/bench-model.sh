#!/usr/bin/env bash
# Times the forecasting workload in Go and in statsmodels on the same data:
# the four default SARIMAX candidates with 4 exog columns on 3600 points,
# AIC selection, and a 60-step forecast of the best. Prints both times and
# the ratio; then a policy's first forecast after a restart, fitted again
# against resumed from its stored fit. Installs Debian's python3-statsmodels
# if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
data=model/testdata/golden/bench_n3600.csv
future=model/testdata/golden/bench_n3600_future.csv

if ! /usr/bin/python3 -c 'import statsmodels' 2>/dev/null; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq python3-statsmodels >/dev/null
fi

echo "== Go: go test -bench BenchmarkSelectDefaultOrdersAndForecast ./model/"
go_out=$(go test -run '^$' -bench 'BenchmarkSelectDefaultOrdersAndForecast$' -benchtime 10x -count 1 ./model/)
echo "$go_out" | grep -E '^Benchmark|^cpu'
go_ns=$(echo "$go_out" | awk '/^BenchmarkSelectDefaultOrdersAndForecast/ {print $3}')

echo "== statsmodels $(/usr/bin/python3 -c 'import statsmodels; print(statsmodels.__version__)')"
py_s=$(PYTHONWARNINGS=ignore /usr/bin/python3 - "$data" "$future" <<'PY'
import csv, sys, time, warnings
import numpy as np
from statsmodels.tsa.statespace.sarimax import SARIMAX
warnings.simplefilter("ignore")  # after the import, which resets the filters

def read(p):
    with open(p, newline="") as f:
        return list(csv.DictReader(f))
rows = read(sys.argv[1])
cols = [c for c in rows[0] if c != "y"]
y = np.array([float(r["y"]) for r in rows])
X = np.array([[float(r[c]) for c in cols] for r in rows])
Xf = np.array([[float(r[c]) for c in cols] for r in read(sys.argv[2])])[:60]
best = None
t0 = time.perf_counter()
for order in [(1, 1, 1), (1, 0, 1), (2, 1, 1), (1, 1, 0)]:
    m = SARIMAX(y, exog=X, order=order, enforce_stationarity=False, enforce_invertibility=False)
    r = m.fit(disp=False)
    if best is None or r.aic < best.aic:
        best = r
fc = best.get_forecast(steps=60, exog=Xf)
_ = fc.predicted_mean, fc.var_pred_mean
print(time.perf_counter() - t0)
PY
)
awk -v g="$go_ns" -v p="$py_s" 'BEGIN {
	printf "Go:          %8.1f ms per select+forecast\n", g / 1e6
	printf "statsmodels: %8.1f ms per select+forecast\n", p * 1e3
	printf "ratio:       %8.1fx faster\n", (p * 1e9) / g
}'

echo "== a policy's first forecast after a restart: fitting again against resuming the stored fit"
go test -run '^$' -bench 'BenchmarkFirstForecastAfterARestart' -benchtime 20x -count 1 ./model/ | grep -E '^Benchmark'

echo "== what one policy's forecaster holds between plans (the daemon keeps one a policy)"
go test -run '^$' -bench 'BenchmarkMemoryAForecasterHoldsBetweenPlans' -benchtime 3x -count 1 ./model/ | grep -E '^Benchmark'
