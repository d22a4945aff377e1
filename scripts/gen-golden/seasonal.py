#!/usr/bin/python3
"""Seasonal SARIMAX checks the reference script cannot express.

Writes model/testdata/seasonal.json: for a few seasonal orders on golden
series, statsmodels' start parameters, its log-likelihood there and its
forecast there (no optimisation, so it runs in seconds).

  /usr/bin/python3 scripts/gen-golden/seasonal.py > model/testdata/seasonal.json
"""
import csv
import json
import sys
import warnings

import numpy as np
from statsmodels.tsa.statespace.sarimax import SARIMAX

warnings.simplefilter("ignore")

CASES = [
    ("counts_n420", (1, 0, 1), (1, 0, 1, 24)),
    ("levelshift_n300", (1, 1, 1), (1, 1, 0, 12)),
    ("arima211_n200", (2, 1, 0), (0, 1, 1, 7)),
    ("ar1_noexog_n100", (1, 0, 0), (2, 0, 1, 4)),
]


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


out = []
for name, order, sorder in CASES:
    rows = read(f"model/testdata/golden/{name}.csv")
    cols = [c for c in rows[0] if c != "y"]
    y = np.array([float(r["y"]) for r in rows])
    X = np.array([[float(r[c]) for c in cols] for r in rows]) if cols else None
    Xf = None
    if cols:
        fr = read(f"model/testdata/golden/{name}_future.csv")
        Xf = np.array([[float(r[c]) for c in cols] for r in fr])[:5]
    m = SARIMAX(y, exog=X, order=order, seasonal_order=sorder,
                enforce_stationarity=False, enforce_invertibility=False)
    p = m.start_params
    r = m.smooth(p)
    fc = r.get_forecast(steps=5, exog=Xf)
    out.append({
        "series": name, "order": list(order) + list(sorder),
        "param_names": list(m.param_names), "params": [float(v) for v in p],
        "llf": float(r.llf),
        "forecast": {"mean": [float(v) for v in fc.predicted_mean],
                     "variance": [float(v) for v in fc.var_pred_mean]},
    })
json.dump(out, sys.stdout, indent=1)
print()
