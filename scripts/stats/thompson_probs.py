"""Exact Thompson-sampling pick probabilities for test/unit/native-bandit.test.ts.

P(arm k has the largest sample) = integral of f_k(t) * prod_{j != k} F_j(t) dt for independent
posteriors, by scipy quadrature. Writes test/fixtures/stats/thompson-probs.json.
Run: python3 scripts/stats/thompson_probs.py  (needs scipy)
"""
import json
import pathlib

from scipy import integrate, stats

CASES = [
    {"kind": "normal", "a": [0.1, 0.3, 0.0, 0.25], "b": [0.2, 0.5, 0.1, 0.05]},
    {"kind": "normal", "a": [1.0, 1.2], "b": [0.1, 0.3]},
    {"kind": "beta", "a": [3.0, 2.0, 10.0, 1.5], "b": [2.0, 3.0, 8.0, 0.7]},
    {"kind": "beta", "a": [0.5, 0.8, 2.0], "b": [0.5, 0.3, 2.5]},
]


def dists(case):
    if case["kind"] == "normal":
        return [stats.norm(m, s) for m, s in zip(case["a"], case["b"])], (-float("inf"), float("inf"))
    return [stats.beta(a, b) for a, b in zip(case["a"], case["b"])], (0.0, 1.0)


def pick_probs(case):
    ds, (lo, hi) = dists(case)
    probs = []
    for k, dk in enumerate(ds):
        others = [d for j, d in enumerate(ds) if j != k]

        def integrand(t, dk=dk, others=others):
            p = dk.pdf(t)
            for d in others:
                p *= d.cdf(t)
            return p

        # Split at the arms' medians so quad sees each density's mass.
        points = sorted(d.median() for d in ds)
        edges = [lo, *points, hi]
        total = sum(integrate.quad(integrand, a, b, limit=200, epsabs=1e-12, epsrel=1e-10)[0] for a, b in zip(edges, edges[1:]) if b > a)
        probs.append(total)
    return probs


out = {"generator": "scripts/stats/thompson_probs.py", "cases": [{**c, "probs": pick_probs(c)} for c in CASES]}
for c in out["cases"]:
    assert abs(sum(c["probs"]) - 1) < 1e-8, c
path = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "stats" / "thompson-probs.json"
path.write_text(json.dumps(out, indent=2) + "\n")
print(path, [[round(p, 6) for p in c["probs"]] for c in out["cases"]])
