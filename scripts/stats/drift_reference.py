"""Reference values for the drift statistics (src/analyze/psi.ts, src/analyze/ks.ts), checked by
test/analyze/drift-reference.test.ts. The data are generated below from fixed seeds and written
into test/fixtures/stats/drift-reference.json beside the values.

  KS:   scipy.stats.ks_2samp(a, b, alternative='two-sided', method=...) for D and p, for the
        'auto' choice (exact up to 10,000 values a side) and explicit 'exact'. For 'asymp' our
        p is the limiting Kolmogorov distribution, so the reference is scipy.stats.kstwobign.sf(
        sqrt(en) * D) with en = n1 n2 / (n1 + n2); scipy's own 'asymp' p (kstwo.sf(D, round(en)))
        is stored beside it for comparison only.
  PSI:  computed by hand in numpy with the binning psi.ts documents: interior edges
        np.unique(np.quantile(ref, np.arange(1, bins) / bins)) (numpy's default 'linear' method),
        plus np.nextafter(c, -inf) when the reference is constant c; bins closed on the right
        (np.searchsorted(edges, x, side='left')); NaN left out; additive smoothing
        p_i = (count_i + s) / (n + s * bins); PSI = sum (p - q) ln(p / q), p current, q reference.

Run: python3 -m venv /tmp/vdrift && /tmp/vdrift/bin/pip install -r scripts/stats/requirements.txt &&
     /tmp/vdrift/bin/python scripts/stats/drift_reference.py
"""
import json
import math
import pathlib

import numpy as np
import scipy
from scipy import stats

OUT = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "stats" / "drift-reference.json"


def floats(x):
    # NaN and infinities are not JSON: written as null, "inf" and "-inf", read back by the test.
    def one(v):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return float(v)
    return [one(v) for v in np.asarray(x, dtype=float)]


def short(x):
    # Six decimals keep the fixture small; the rounded values are the data (written and used as is).
    return np.round(np.asarray(x, dtype=float), 6)


def psi_by_hand(ref, cur, bins, smoothing):
    ref = np.asarray(ref, dtype=float)
    cur = np.asarray(cur, dtype=float)
    ref = ref[~np.isnan(ref)]
    cur = cur[~np.isnan(cur)]
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    if len(edges) == 1 and ref.min() == ref.max() and np.isfinite(edges[0]):
        edges = np.array([np.nextafter(edges[0], -np.inf), edges[0]])
    nb = len(edges) + 1
    q_counts = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=nb)
    p_counts = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=nb)
    q = (q_counts + smoothing) / (len(ref) + smoothing * nb)
    p = (p_counts + smoothing) / (len(cur) + smoothing * nb)
    return {"edges": [float(e) for e in edges], "reference_counts": q_counts.tolist(),
            "current_counts": p_counts.tolist(), "psi": float(np.sum((p - q) * np.log(p / q)))}


def psi_cases(rng):
    base = rng.normal(0.0, 1.0, 2000)
    cases = [
        ("same_distribution", base, rng.normal(0.0, 1.0, 1500), 10, 0.5),
        ("mean_shift_0.25", base, rng.normal(0.25, 1.0, 1500), 10, 0.5),
        ("mean_shift_1", base, rng.normal(1.0, 1.0, 1500), 10, 0.5),
        ("scale_2_20_bins", base, rng.normal(0.0, 2.0, 800), 20, 0.5),
        ("small_current_smoothing_1", base, rng.normal(0.5, 1.0, 40), 10, 1.0),
        # Ties: a zero-inflated feature (60% zeros) and a small set of discrete levels.
        ("zero_inflated", np.where(rng.random(1000) < 0.6, 0.0, rng.exponential(2.0, 1000)),
         np.where(rng.random(1000) < 0.3, 0.0, rng.exponential(2.0, 1000)), 10, 0.5),
        ("discrete_levels", rng.integers(0, 4, 500).astype(float), rng.integers(1, 6, 700).astype(float), 10, 0.5),
        ("constant_reference", np.full(300, 3.0), np.concatenate([np.full(200, 3.0), rng.normal(3.0, 1.0, 100)]), 10, 0.5),
        ("with_missing_and_infinities", np.concatenate([base[:500], [np.nan] * 20]),
         np.concatenate([rng.normal(0.3, 1.0, 400), [np.nan] * 50, [np.inf, -np.inf]]), 10, 0.5),
        ("four_bins_unequal", rng.uniform(0.0, 10.0, 123), rng.uniform(2.0, 12.0, 77), 4, 0.5),
    ]
    out = []
    for name, ref, cur, bins, smoothing in cases:
        ref, cur = short(ref), short(cur)
        out.append({"name": name, "bins": bins, "smoothing": smoothing, "reference": floats(ref), "current": floats(cur),
                    **psi_by_hand(ref, cur, bins, smoothing)})
    return out


def ks_cases(rng):
    cases = [
        ("equal_n_small", rng.normal(0.0, 1.0, 25), rng.normal(0.8, 1.0, 25), "auto"),
        ("equal_n_500", rng.normal(0.0, 1.0, 500), rng.normal(0.1, 1.0, 500), "auto"),
        ("equal_n_tiny_p", rng.normal(0.0, 1.0, 300), rng.normal(1.0, 1.0, 300), "auto"),
        ("unequal_n", rng.normal(0.0, 1.0, 120), rng.normal(0.3, 1.2, 75), "auto"),
        ("unequal_n_large", rng.normal(0.0, 1.0, 2000), rng.normal(0.05, 1.0, 1500), "auto"),
        ("unequal_n_tiny_p", rng.exponential(1.0, 700), rng.exponential(1.6, 400), "auto"),
        ("coprime_sizes", rng.normal(0.0, 1.0, 97), rng.normal(0.0, 1.0, 89), "auto"),
        ("ties_discrete", rng.integers(0, 5, 200).astype(float), rng.integers(0, 6, 150).astype(float), "auto"),
        ("identical", np.arange(50.0), np.arange(50.0), "auto"),
        ("one_each", np.array([1.0]), np.array([2.0]), "auto"),
        ("exact_explicit", rng.normal(0.0, 1.0, 3000), rng.normal(0.02, 1.0, 2500), "exact"),
        ("asymp_explicit", rng.normal(0.0, 1.0, 400), rng.normal(0.2, 1.0, 300), "asymp"),
        ("auto_above_10000", rng.normal(0.0, 1.0, 12000), rng.normal(0.03, 1.0, 11000), "auto"),
    ]
    out = []
    for name, a, b, method in cases:
        a, b = short(a), short(b)
        r = stats.ks_2samp(a, b, alternative="two-sided", method=method)
        n1, n2 = len(a), len(b)
        en = n1 * n2 / (n1 + n2)
        asymp = method == "asymp" or (method == "auto" and max(n1, n2) > 10000)
        case = {"name": name, "method": method, "a": floats(a), "b": floats(b), "statistic": float(r.statistic),
                "expected_method": "asymp" if asymp else "exact"}
        if asymp:
            case["p"] = float(stats.kstwobign.sf(math.sqrt(en) * r.statistic))
            case["scipy_asymp_p"] = float(r.pvalue)
        else:
            case["p"] = float(r.pvalue)
        out.append(case)
    return out


def kolmogorov_points():
    ts = [0.05, 0.2, 0.5, 0.8, 0.99, 1.0, 1.2, 1.5, 2.0, 3.0, 4.5, 6.0]
    return [{"t": t, "sf": float(stats.kstwobign.sf(t))} for t in ts]


def main():
    rng = np.random.default_rng(20261202)
    out = {"numpy_version": np.__version__, "scipy_version": scipy.__version__,
           "generator": "scripts/stats/drift_reference.py",
           "psi": psi_cases(rng), "ks": ks_cases(rng), "kolmogorov": kolmogorov_points()}
    for c in out["psi"]:
        print(f"psi {c['name']}: {c['psi']:.6g} over {len(c['edges']) + 1} bins")
    for c in out["ks"]:
        print(f"ks {c['name']}: D {c['statistic']:.6g} p {c['p']:.6g} ({c['expected_method']})")
    OUT.write_text(json.dumps(out, allow_nan=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
