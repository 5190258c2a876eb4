"""Reference detections for src/analyze/page-hinkley.ts: River's PageHinkley run on seeded streams.

Writes test/fixtures/stats/page-hinkley-reference.json: each case's parameters, stream, the indices
at which River reported drift, and the running mean and both test statistics at a few points.
test/analyze/page-hinkley.test.ts replays the streams through our Page-Hinkley and expects
identical detections.

Run: python3 -m venv /tmp/vdrift && /tmp/vdrift/bin/pip install -r scripts/stats/requirements.txt
     /tmp/vdrift/bin/python scripts/stats/page_hinkley_reference.py
"""
import json
import pathlib

import numpy as np
import river
from river.drift import PageHinkley

OUT = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "stats" / "page-hinkley-reference.json"
PROBE_EVERY = 200


def streams():
    rng = np.random.default_rng(20261202)
    mean_up = np.concatenate([rng.normal(0.0, 1.0, 1500), rng.normal(1.0, 1.0, 1500)])
    mean_down = np.concatenate([rng.normal(5.0, 1.0, 1500), rng.normal(4.0, 1.0, 1500)])
    stationary = rng.normal(0.0, 1.0, 3000)
    constant = np.full(2000, 0.75)
    # Error indicators (0/1) whose rate rises then falls back: several detections and resets.
    errors = np.concatenate([rng.binomial(1, 0.05, 1000), rng.binomial(1, 0.3, 1000),
                             rng.binomial(1, 0.05, 1000)]).astype(float)
    # Up then down by 2: the 'up' and 'down' modes each see only one of the two changes.
    up_down = np.concatenate([rng.normal(0.0, 0.5, 800), rng.normal(2.0, 0.5, 800), rng.normal(0.0, 0.5, 800)])
    default = {}
    eager = {"min_instances": 10, "delta": 0.1, "threshold": 10.0, "alpha": 0.999}
    return [
        ("mean_up", default, mean_up),
        ("mean_down", default, mean_down),
        ("stationary", default, stationary),
        ("constant", default, constant),
        ("errors_eager", eager, errors),
        ("up_down_both", {**eager, "mode": "both"}, up_down),
        ("up_down_up", {**eager, "mode": "up"}, up_down),
        ("up_down_down", {**eager, "mode": "down"}, up_down),
        ("mean_down_no_forgetting", {"alpha": 1.0, "threshold": 25.0}, mean_down),
    ]


def run(params, stream):
    ph = PageHinkley(**params)
    detections, probes = [], []
    for i, x in enumerate(stream):
        ph.update(float(x))
        if ph.drift_detected:
            detections.append(i)
        if i % PROBE_EVERY == PROBE_EVERY - 1 or ph.drift_detected:
            probes.append({"index": i, "count": ph._x_mean.n, "mean": ph._x_mean.get(),
                           "increase": ph._sum_increase - ph._min_increase,
                           "decrease": ph._max_decrease - ph._sum_decrease})
    return detections, probes


def main():
    cases = []
    for name, params, stream in streams():
        detections, probes = run(params, stream)
        cases.append({"name": name, "params": params, "stream": [float(x) for x in stream],
                      "detections": detections, "probes": probes})
        print(f"{name}: {len(detections)} detection(s) at {detections[:10]}")
    OUT.write_text(json.dumps({"river_version": river.__version__,
                               "generator": "scripts/stats/page_hinkley_reference.py", "cases": cases}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
