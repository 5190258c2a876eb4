"""Reference values for the binned Mann-Whitney U test (src/analyze/mann-whitney.ts), checked by
test/analyze/mann-whitney.test.ts.

Each case is two binned samples (value, count), as HDR latency histograms give them; scipy
computes on the samples expanded value by value:
  scipy.stats.mannwhitneyu(x, y, alternative=..., method='asymptotic', use_continuity=True)
for U (of x) and p; z is not returned by scipy and is left out.

Run: python3 -m venv /tmp/vstats && /tmp/vstats/bin/pip install -r scripts/stats/requirements.txt &&
     /tmp/vstats/bin/python scripts/stats/mann_whitney_reference.py
"""
import json
import pathlib

import numpy as np
import scipy
from scipy import stats

OUT = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'fixtures' / 'stats' / 'mann-whitney-reference.json'

rng = np.random.default_rng(20261202)


def binned(values):
    v, c = np.unique(np.asarray(values), return_counts=True)
    return [[float(a), int(b)] for a, b in zip(v, c)]


def expand(bins):
    return np.repeat([b[0] for b in bins], [b[1] for b in bins])


cases = []
# Latencies in ms rounded to 0.1 (many ties), a slower candidate, an equal one, small samples.
stable = np.round(rng.lognormal(np.log(2.0), 0.4, 400), 1)
slow = np.round(rng.lognormal(np.log(2.4), 0.4, 120), 1)
same = np.round(rng.lognormal(np.log(2.0), 0.4, 150), 1)
for name, x, y in [('slower candidate', slow, stable), ('same distribution', same, stable), ('small', [1, 2, 2, 3, 5], [2, 2, 4, 6, 7, 7])]:
    bx, by = binned(x), binned(y)
    for alternative in ['two-sided', 'greater', 'less']:
        r = stats.mannwhitneyu(expand(bx), expand(by), alternative=alternative, method='asymptotic', use_continuity=True)
        cases.append({'name': name, 'alternative': alternative, 'x': bx, 'y': by, 'u': float(r.statistic), 'p': float(r.pvalue)})

OUT.write_text(json.dumps({'scipy': scipy.__version__, 'cases': cases}, indent=1) + '\n')
print(f'wrote {len(cases)} cases to {OUT}')
