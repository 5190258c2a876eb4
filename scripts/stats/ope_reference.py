"""Reference values for off-policy evaluation (src/learn/ope.ts), checked by test/learn/ope.test.ts.

Builds a small logged bandit dataset deterministically (40 events, 3 arms, 2-dim contexts, a
non-uniform logging policy), then computes with numpy/scipy the IPS, SNIPS and DR estimates of
three candidate policies, their standard errors and confidence intervals, and writes them with
the dataset to test/fixtures/stats/ope-reference.json.

The computations are written independently of the TypeScript where they can be:
  IPS and DR standard errors: scipy.stats.sem (sample standard deviation / sqrt(n));
  SNIPS standard error: the delta method as gradient' * cov * gradient over the sample
    covariance (numpy.cov) of (w r, w), not the TypeScript's closed form;
  intervals: scipy.stats.norm.interval;
  reward model: per-arm ridge regression with an unpenalised intercept, solved with
    numpy.linalg.solve (arms with no events: the mean reward of all events).

Run: python3 -m venv /tmp/v && /tmp/v/bin/pip install -r scripts/stats/requirements.txt &&
     /tmp/v/bin/python scripts/stats/ope_reference.py
"""
import json
import pathlib

import numpy as np
import scipy
from scipy import stats

N, K, D = 40, 3, 2
LAMBDA = 1.0
OUT = pathlib.Path(__file__).resolve().parents[2] / 'test' / 'fixtures' / 'stats' / 'ope-reference.json'


def softmax(s):
    e = np.exp(s - s.max())
    return e / e.sum()


def dataset():
    rng = np.random.default_rng(13)
    # float32 contexts, as the decisions table stores them (real[]): exact in JSON and in JS.
    x = rng.normal(size=(N, D)).astype(np.float32).astype(np.float64)
    logging_w = np.array([[1.0, -0.5], [-0.8, 0.3], [0.2, 0.9]])
    true_w = np.array([[0.6, 0.1], [-0.2, 0.4], [0.3, -0.3]])
    true_b = np.array([0.5, 0.8, 0.3])
    actions, props, rewards = [], [], []
    for i in range(N):
        # logging policy: softmax of a linear score with a 10% floor per arm (never uniform)
        p = 0.7 * softmax(logging_w @ x[i]) + 0.1
        a = int(rng.choice(K, p=p))
        actions.append(a)
        props.append(float(p[a]))
        rewards.append(float(np.round(true_b[a] + true_w[a] @ x[i] + rng.normal(scale=0.3), 6)))
    return x, np.array(actions), np.array(props), np.array(rewards)


def fit_ridge(x, a, r, lam):
    """Per-arm coefficients [intercept, slopes...]; with no context columns, the per-arm mean."""
    d = x.shape[1]
    coef = []
    for k in range(K):
        rows = a == k
        if not rows.any():
            coef.append([float(r.mean())] + [0.0] * d)
            continue
        X = np.hstack([np.ones((rows.sum(), 1)), x[rows]])
        penalty = lam * np.diag([0.0] + [1.0] * d)
        coef.append(np.linalg.solve(X.T @ X + penalty, X.T @ r[rows]).tolist())
    return np.array(coef)


def predict(coef, xi):
    return coef[:, 0] + coef[:, 1:] @ xi


def estimates(x, a, p, r, pi, coef, level):
    n = len(r)
    w = pi[np.arange(n), a] / p
    wr = w * r
    z_int = lambda v, se: list(stats.norm.interval(level, loc=v, scale=se))

    ips = wr.mean()
    ips_se = stats.sem(wr)

    snips = wr.sum() / w.sum()
    grad = np.array([1 / w.mean(), -wr.mean() / w.mean() ** 2])
    snips_se = np.sqrt(grad @ np.cov(np.vstack([wr, w])) @ grad / n)

    q = np.array([predict(coef, x[i]) for i in range(n)])
    terms = (pi * q).sum(axis=1) + w * (r - q[np.arange(n), a])
    dr = terms.mean()
    dr_se = stats.sem(terms)

    return {
        'n': n,
        'ips': {'value': ips, 'std_error': ips_se, 'ci': z_int(ips, ips_se)},
        'snips': {'value': snips, 'std_error': snips_se, 'ci': z_int(snips, snips_se)},
        'dr': {'value': dr, 'std_error': dr_se, 'ci': z_int(dr, dr_se)},
        'effective_sample_size': w.sum() ** 2 / (w ** 2).sum(),
        'max_weight': w.max(),
        'logged_value': r.mean(),
    }


def to_json(v):
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [to_json(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    return v


def main():
    x, a, p, r = dataset()
    assert set(a.tolist()) == set(range(K)), 'every arm must be logged'
    softmax_w = np.array([[0.5, 1.0], [-1.0, 0.2], [0.3, -0.7]])
    softmax_b = np.array([0.1, -0.2, 0.0])
    policies = {
        'uniform': np.full((N, K), 1 / K),
        'arm:1': np.tile(np.eye(K)[1], (N, 1)),
        'softmax': np.array([softmax(softmax_w @ x[i] + softmax_b) for i in range(N)]),
    }
    coef = fit_ridge(x, a, r, LAMBDA)
    coef_nc = fit_ridge(np.zeros((N, 0)), a, r, LAMBDA)
    cases = []
    for name, pi in policies.items():
        for level in (0.95, 0.9):
            cases.append({'policy': name, 'contexts': True, 'level': level, **estimates(x, a, p, r, pi, coef, level)})
    # Without contexts the reward model is the per-arm mean (the context-free policies only).
    for name in ('uniform', 'arm:1'):
        cases.append({'policy': name, 'contexts': False, 'level': 0.95,
                      **estimates(np.zeros((N, 0)), a, p, r, policies[name], coef_nc, 0.95)})
    out = {
        'generated_by': 'scripts/stats/ope_reference.py',
        'versions': {'numpy': np.__version__, 'scipy': scipy.__version__},
        'arms': K,
        'lambda': LAMBDA,
        'events': [{'action': int(a[i]), 'propensity': float(p[i]), 'reward': float(r[i]), 'context': x[i].tolist()} for i in range(N)],
        'softmax_policy': {'weights': softmax_w.tolist(), 'bias': softmax_b.tolist()},
        'reward_model': {'contexts': coef.tolist(), 'no_contexts': coef_nc.tolist()},
        'cases': cases,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(to_json(out), indent=1) + '\n')
    print(f'wrote {OUT.relative_to(OUT.parents[3])}: {len(cases)} cases')


if __name__ == '__main__':
    main()
