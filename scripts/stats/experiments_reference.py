"""Reference values for the experiment statistics (src/analyze), checked by
test/analyze/reference.test.ts.

The data are written below. For each case the script writes the per-variant SUFFICIENT
STATISTICS the TypeScript takes (n, mean, sample variance; covariate summaries for CUPED) and the
values scipy/statsmodels compute from the RAW data, to test/fixtures/stats/experiments-reference.json.

  Welch:        scipy.stats.ttest_ind(equal_var=False): t, p, df; .confidence_interval(1 - alpha).
                Lift CI: the delta method written as gradient' Cov gradient (numpy), normal quantile.
                Cohen's d: pooled SD from numpy var(ddof=1).
  Proportions:  statsmodels proportions_ztest (pooled SE) for z and p;
                confint_proportions_2indep(compare='diff', method='wald') for the difference CI;
                confint_proportions_2indep(compare='ratio', method='log') minus 1 for the lift CI.
  Holm:         statsmodels multipletests(method='holm').
  SRM:          scipy.stats.chisquare(observed, expected), expected built period by period.
  CUPED:        statsmodels OLS x ~ C(variant) + (c - mean c) (missing covariates imputed with their
                variant's mean of the present ones): the treatment coefficients are the adjusted
                differences and the covariate's coefficient is theta; then scipy ttest_ind(equal_var=
                False) on the adjusted column x - theta (c - mean c) for t, p, df and CI.
  Sequential:   the Waudby-Smith et al. (2023) asymptotic confidence sequence (eq. 9) and p-value
                (eq. 155) as GrowthBook's gbstats writes them, computed here from the raw data.

Run: python3 -m venv /tmp/vstats && /tmp/vstats/bin/pip install -r scripts/stats/requirements.txt &&
     /tmp/vstats/bin/python scripts/stats/experiments_reference.py
"""
import json
import math
import pathlib

import numpy as np
import scipy
import statsmodels
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

OUT = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'fixtures' / 'stats' / 'experiments-reference.json'

WELCH_CONTROL = [11.39, 8.04, 6.85, 4.15, 9.29, 12.5, 10.07, 11.02, 12.05, 8.24, 15.3, 8.25]
WELCH_TREATMENT = [12.99, 22.46, 11.04, 11.96, 9.45, 12.84, 2.99, 8.91, 18.28, 12.35, 10.54, 12.99, 13.16, 12.11, 13.81]
# A negative-mean control and a treatment with a smaller variance (the lift's sign flips).
WELCH_CONTROL_2 = [-1.2, -0.4, -2.9, 0.3, -1.7, -0.8, -2.2, -1.1]
WELCH_TREATMENT_2 = [-0.9, -1.0, -0.7, -1.3, -0.8, -1.1, -0.6, -1.2, -1.0, -0.9, -0.95]

PROPORTIONS = [  # (control successes, control n, treatment successes, treatment n)
    (120, 1000, 145, 1000),
    (30, 500, 18, 480),
    (4512, 50000, 4700, 50100),
]

HOLM_P = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04, 0.0001, 0.9]

SRM = [  # observed units per variant, weight periods (units first exposed in each, or time fraction)
    {'observed': [10400, 9600], 'periods': [{'weights': [50, 50], 'units': 20000}]},
    {'observed': [4510, 2460, 2030], 'periods': [{'weights': [50, 50, 0], 'units': 3000},
                                                 {'weights': [34, 33, 33], 'units': 6000}]},
    {'observed': [5205, 4795], 'periods': [{'weights': [1, 1], 'fraction': 0.25},
                                           {'weights': [3, 2], 'fraction': 0.75}]},
]

# CUPED: metric x and pre-period covariate c per unit in three variants (None: no covariate).
CUPED_C = [
    [1.681, 6.183, 3.653, 6.572, 4.958, 3.004, 4.856, 2.986, 7.025, 4.943, 6.706, 2.77, 8.239, 4.398, 7.731,
     6.708, 2.798, 5.646, 3.915, 5.819, 7.865, 6.377, 7.136, 2.657, 5.408, None, 7.178, 3.761, None, 5.859],
    [4.494, 7.721, 4.816, 4.561, 1.299, 3.788, 2.21, 6.041, 3.944, 4.912, 4.967, 4.624, 6.905, None, 4.361,
     5.308, 6.106, 7.743, 5.26, 7.895, 3.812, 4.532, 2.026, 6.644, 2.935, 2.935],
    [5.043, 5.205, 6.245, 5.619, 6.544, 3.011, 6.321, 1.697, 3.806, 7.212, 6.702, 1.294, 6.177, 4.138, 3.444,
     5.409, 5.258, 7.789, 2.116, 4.143, 4.715, 1.319, 7.346, 8.512, 3.75, 5.763, 4.462, 5.541, 3.649, 6.663,
     2.669, None, 5.713, 9.849],
]
CUPED_X = [
    [1.988, 6.525, 5.732, 6.738, 5.235, 5.599, 6.656, 4.452, 8.428, 6.044, 7.499, 4.032, 9.801, 7.279, 8.487,
     7.969, 4.3, 5.822, 5.776, 8.104, 8.235, 8.573, 7.851, 5.542, 8.083, 6.763, 6.459, 5.037, 6.133, 5.958],
    [7.687, 9.216, 6.381, 7.858, 3.785, 7.129, 4.386, 8.963, 7.428, 7.303, 9.069, 6.566, 8.803, 8.256, 7.73,
     7.289, 7.858, 10.022, 8.784, 9.489, 4.953, 6.748, 5.247, 8.237, 5.566, 3.573],
    [5.187, 6.889, 6.635, 7.217, 8.624, 4.091, 6.553, 2.094, 5.947, 10.067, 9.504, 3.498, 6.897, 5.661, 3.892,
     5.592, 8.098, 9.032, 4.519, 5.755, 7.868, 4.924, 8.135, 9.595, 5.0, 8.805, 7.562, 6.996, 7.883, 8.323,
     3.486, 7.221, 7.298, 11.486],
]

SEQ_TUNING = 5000


def summary(x):
    x = np.asarray(x, dtype=float)
    return {'n': int(x.size), 'mean': float(x.mean()), 'variance': float(x.var(ddof=1))}


def welch_case(control, treatment, alpha):
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    r = stats.ttest_ind(t, c, equal_var=False)
    ci = r.confidence_interval(confidence_level=1 - alpha)
    mc, mt = c.mean(), t.mean()
    grad = np.array([1 / mc, -mt / mc ** 2])  # d(mt/mc)/d(mt, mc)
    cov = np.diag([t.var(ddof=1) / t.size, c.var(ddof=1) / c.size])
    lift_se = math.sqrt(grad @ cov @ grad)
    lift = mt / mc - 1
    z = stats.norm.ppf(1 - alpha / 2)
    pooled = math.sqrt(((c.size - 1) * c.var(ddof=1) + (t.size - 1) * t.var(ddof=1)) / (c.size + t.size - 2))
    return {
        'alpha': alpha, 'control': summary(c), 'treatment': summary(t),
        'diff': float(mt - mc), 't': float(r.statistic), 'df': float(r.df), 'p': float(r.pvalue),
        'ci': [float(ci.low), float(ci.high)], 'lift': float(lift), 'lift_ci': [lift - z * lift_se, lift + z * lift_se],
        'cohen_d': float((mt - mc) / pooled),
    }


def proportions_case(sc, nc, st, nt, alpha=0.05):
    z, p = proportions_ztest([st, sc], [nt, nc])
    lo, hi = confint_proportions_2indep(st, nt, sc, nc, compare='diff', method='wald', alpha=alpha)
    rlo, rhi = confint_proportions_2indep(st, nt, sc, nc, compare='ratio', method='log', alpha=alpha)
    return {'alpha': alpha, 'control': {'n': nc, 'successes': sc}, 'treatment': {'n': nt, 'successes': st},
            'diff': st / nt - sc / nc, 'z': float(z), 'p': float(p), 'ci': [float(lo), float(hi)],
            'lift': (st / nt) / (sc / nc) - 1, 'lift_ci': [float(rlo) - 1, float(rhi) - 1]}


def srm_case(case):
    k = len(case['observed'])
    expected = np.zeros(k)
    key = 'units' if 'units' in case['periods'][0] else 'fraction'
    for period in case['periods']:
        w = np.asarray(period['weights'], float)
        expected += period[key] * w / w.sum()
    expected *= sum(case['observed']) / expected.sum()
    keep = expected > 0  # a variant that never had weight (and has no units) is not a cell
    r = stats.chisquare(np.asarray(case['observed'])[keep], expected[keep])
    return {**case, 'expected': expected.tolist(), 'chi2': float(r.statistic), 'df': int(keep.sum() - 1), 'p': float(r.pvalue)}


def sequential_case(control, treatment, alpha):
    c, t = np.asarray(control, float), np.asarray(treatment, float)
    n = c.size + t.size
    diff = t.mean() - c.mean()
    se2 = c.var(ddof=1) / c.size + t.var(ddof=1) / t.size
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / SEQ_TUNING)
    s2 = se2 * n
    half = math.sqrt(s2) * math.sqrt(2 * (n * rho ** 2 + 1) * math.log(math.sqrt(n * rho ** 2 + 1) / alpha) / (n * rho) ** 2)
    st2 = diff ** 2 * n / se2
    tr2p1 = n * rho ** 2 + 1
    evalue = math.exp(rho ** 2 * st2 / (2 * tr2p1)) / math.sqrt(tr2p1)
    return {'alpha': alpha, 'tuning': SEQ_TUNING, 'control': summary(c), 'treatment': summary(t),
            'p': min(1 / evalue, 1.0), 'ci': [diff - half, diff + half]}


def cuped_case(alpha=0.05):
    variants = []
    for cs, xs in zip(CUPED_C, CUPED_X):
        x = np.asarray(xs, float)
        present = np.array([v is not None for v in cs])
        c_present = np.array([v for v in cs if v is not None], float)
        c = np.array([v if v is not None else c_present.mean() for v in cs], float)
        variants.append({'x': x, 'c': c, 'present': present, 'c_present': c_present})
    x_all = np.concatenate([v['x'] for v in variants])
    c_all = np.concatenate([v['c'] for v in variants])
    group = np.concatenate([np.full(v['x'].size, i) for i, v in enumerate(variants)])
    design = np.column_stack([np.ones_like(x_all), group == 1, group == 2, c_all - c_all.mean()]).astype(float)
    ols = sm.OLS(x_all, design).fit()
    theta = float(ols.params[3])
    adjusted = [v['x'] - theta * (v['c'] - c_all.mean()) for v in variants]
    out = {'alpha': alpha, 'theta': theta, 'covariate_mean': float(c_all.mean()), 'variants': [], 'treatments': []}
    for v in variants:
        xp = v['x'][v['present']]
        cp = v['c_present']
        out['variants'].append({'metric': summary(v['x']), 'covariate': {
            'n': int(cp.size), 'mean': float(cp.mean()), 'variance': float(cp.var(ddof=1)),
            'covariance': float(np.cov(xp, cp, ddof=1)[0, 1])}})
    for i in (1, 2):
        r = stats.ttest_ind(adjusted[i], adjusted[0], equal_var=False)
        ci = r.confidence_interval(confidence_level=1 - alpha)
        raw = stats.ttest_ind(variants[i]['x'], variants[0]['x'], equal_var=False).confidence_interval(confidence_level=1 - alpha)
        out['treatments'].append({
            'ols_diff': float(ols.params[i]), 'ols_se': float(ols.bse[i]),
            'diff': float(adjusted[i].mean() - adjusted[0].mean()), 't': float(r.statistic), 'df': float(r.df),
            'p': float(r.pvalue), 'ci': [float(ci.low), float(ci.high)],
            'raw_ci': [float(raw.low), float(raw.high)],
        })
    return out


def main():
    ref = {
        'generated_by': 'scripts/stats/experiments_reference.py',
        'versions': {'numpy': np.__version__, 'scipy': scipy.__version__, 'statsmodels': statsmodels.__version__},
        'welch': [welch_case(WELCH_CONTROL, WELCH_TREATMENT, 0.05), welch_case(WELCH_CONTROL, WELCH_TREATMENT, 0.1),
                  welch_case(WELCH_CONTROL_2, WELCH_TREATMENT_2, 0.05)],
        'proportions': [proportions_case(*c) for c in PROPORTIONS] + [proportions_case(*PROPORTIONS[0], alpha=0.01)],
        'holm': {'p': HOLM_P, 'adjusted': multipletests(HOLM_P, method='holm')[1].tolist()},
        'srm': [srm_case(c) for c in SRM],
        'sequential': [sequential_case(WELCH_CONTROL, WELCH_TREATMENT, 0.05), sequential_case(CUPED_X[0], CUPED_X[1], 0.05),
                       sequential_case(CUPED_X[0], CUPED_X[1], 0.1)],
        'cuped': cuped_case(),
    }
    OUT.write_text(json.dumps(ref, indent=1) + '\n')
    print(json.dumps(ref['cuped']['treatments'], indent=1))
    print('wrote', OUT)


if __name__ == '__main__':
    main()
