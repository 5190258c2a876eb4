"""Reference intervals for src/analyze/variant-interval.ts: one variant's confidence interval.

Writes test/fixtures/stats/variant-interval-reference.json: for means, scipy's Student t interval
of the mean from (n, mean, sd); for rates, statsmodels' Wilson score interval from (successes, n).
test/analyze/variant-interval.test.ts expects the same values.

Run: python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r scripts/stats/requirements.txt
     /tmp/venv/bin/python scripts/stats/variant_interval_reference.py
"""
import json
import math
import pathlib

import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

OUT = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "stats" / "variant-interval-reference.json"

MEANS = [
    # n, mean, sd, alpha
    (2, 0.5, 0.7071067811865476, 0.05),
    (10, 3.2, 1.5, 0.05),
    (41, 0.5853658536585366, 0.4988, 0.05),
    (250, -1.25, 4.0, 0.01),
    (10000, 0.1, 0.3, 0.1),
    (30, 7.0, 0.0, 0.05),
]

RATES = [
    # successes, n, alpha
    (0, 10, 0.05),
    (10, 10, 0.05),
    (1, 1, 0.05),
    (24, 41, 0.05),
    (300, 1000, 0.01),
    (7, 50000, 0.1),
]


def main():
    means = []
    for n, mean, sd, alpha in MEANS:
        lo, hi = stats.t.interval(1 - alpha, n - 1, loc=mean, scale=sd / math.sqrt(n)) if sd > 0 else (mean, mean)
        means.append({"n": n, "mean": mean, "sd": sd, "alpha": alpha, "ci": [float(lo), float(hi)]})
    rates = []
    for successes, n, alpha in RATES:
        lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
        rates.append({"successes": successes, "n": n, "alpha": alpha, "ci": [float(lo), float(hi)]})
    OUT.write_text(json.dumps({"scipy": scipy.__version__, "statsmodels": statsmodels.__version__, "means": means, "rates": rates}, indent=1) + "\n")


if __name__ == "__main__":
    main()
