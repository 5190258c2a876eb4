"""Reference fit for the test oracle of test/learn/online-logistic.test.ts.

The acceptance test fits a logistic regression (with intercept, no penalty) by Newton's method
to judge the online learner. This script fits the same kind of model with statsmodels on a seeded
dataset and writes test/fixtures/stats/logistic-reference.json (features, labels, coefficients,
mean log-loss), so the test's Newton fit is checked against statsmodels.
Features are multiples of 1/64, exact in FP32 (the learner's feature type).

Run: python3 -m venv /tmp/venv && /tmp/venv/bin/pip install statsmodels numpy
     /tmp/venv/bin/python scripts/stats/logistic_reference.py
"""
import json
import pathlib

import numpy as np
import statsmodels
import statsmodels.api as sm

OUT = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "stats" / "logistic-reference.json"


def main():
    rng = np.random.default_rng(1307)
    n, d = 600, 10
    x = np.round(rng.uniform(-1.0, 1.0, (n, d)) * 64) / 64
    w = rng.uniform(-1.5, 1.5, d)
    p = 1 / (1 + np.exp(-(x @ w + 0.3)))
    y = (rng.uniform(size=n) < p).astype(float)
    fit = sm.Logit(y, sm.add_constant(x)).fit(method="newton", tol=1e-12, maxiter=100, disp=False)
    params = fit.params  # intercept first
    OUT.write_text(json.dumps({
        "statsmodels_version": statsmodels.__version__,
        "generator": "scripts/stats/logistic_reference.py",
        "n": n, "d": d,
        "x": x.ravel().tolist(), "y": y.tolist(),
        "weights": params[1:].tolist(), "bias": float(params[0]),
        "mean_log_loss": float(-fit.llf / n),
    }) + "\n")
    print(f"mean log-loss {-fit.llf / n:.6f}; wrote {OUT}")


if __name__ == "__main__":
    main()
