#!/usr/bin/python3
"""Polish statsmodels' own SARIMAX fits to a tight optimum.

statsmodels' default fit (L-BFGS-B, forward-difference gradient, 50
iterations) often stops short of the maximum likelihood. For the golden
tests we also need the optimum itself, computed by statsmodels alone: this
script restarts statsmodels' optimiser from its own default estimate (and
from its own start parameters) with complex-step gradients, a tight
tolerance and many iterations, and keeps the best. Inputs are the reference
JSON written by sarimax_reference.py and the same CSV files.

  polish.py NAME.json history.csv [future.csv] --horizon N > NAME.polished.json
"""
import argparse
import csv
import json
import sys
import warnings

warnings.simplefilter("ignore")

import numpy as np
from statsmodels.tsa.statespace.sarimax import SARIMAX


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ref")
    ap.add_argument("history")
    ap.add_argument("future", nargs="?")
    ap.add_argument("--horizon", type=int, required=True)
    a = ap.parse_args()
    ref = json.load(open(a.ref))
    rows = read_csv(a.history)
    cols = [c for c in rows[0].keys() if c != "y"]
    y = np.array([float(r["y"]) for r in rows])
    X = np.array([[float(r[c]) for c in cols] for r in rows]) if cols else None
    Xf = None
    if a.future:
        Xf = np.array([[float(r[c]) for c in cols] for r in read_csv(a.future)])[: a.horizon]
    out = {"candidates": []}
    best = None
    for cand in ref["candidates"]:
        if "error" in cand:
            continue
        order = tuple(cand["order"])
        m = SARIMAX(y, exog=X, order=order, enforce_stationarity=False, enforce_invertibility=False)
        top = None
        for sp in (cand["params"], cand["start_params"]):
            for _ in range(3):  # restart from the last optimum: L-BFGS memory resets
                try:
                    r = m.fit(start_params=sp, disp=False, method="lbfgs", maxiter=5000,
                              optim_score="approx", optim_complex_step=True,
                              pgtol=1e-11, factr=10.0, m=20)
                except Exception:
                    break
                if top is None or r.llf > top.llf:
                    top = r
                sp = r.params
        c = {"order": list(order), "params": [float(v) for v in top.params],
             "llf": float(top.llf), "aic": float(top.aic)}
        out["candidates"].append(c)
        if best is None or top.aic < best[1].aic:
            best = (c, top)
    c, r = best
    fc = r.get_forecast(steps=a.horizon, exog=Xf)
    out["best_order"] = c["order"]
    out["forecast"] = {"mean": [float(v) for v in fc.predicted_mean],
                       "variance": [float(v) for v in fc.var_pred_mean]}
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
