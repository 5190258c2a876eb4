"""Reference detections for src/learn/adwin.ts: River's ADWIN run on seeded streams.

Writes test/fixtures/stats/adwin-reference.json: each case's parameters, stream, the indices at
which River reported drift, and width / estimation / variance at a few points. test/learn/adwin.test.ts
replays the streams through our ADWIN and expects identical results.

Run: python3 -m venv /tmp/venv && /tmp/venv/bin/pip install river==0.26.1 numpy
     /tmp/venv/bin/python scripts/stats/adwin_reference.py
"""
import json
import pathlib

import numpy as np
import river
from river.drift import ADWIN

OUT = pathlib.Path(__file__).resolve().parents[2] / "test" / "fixtures" / "stats" / "adwin-reference.json"
PROBE_EVERY = 250


def streams():
    rng = np.random.default_rng(20240513)
    mean_shift = np.concatenate([rng.normal(0.0, 1.0, 1500), rng.normal(1.0, 1.0, 1500)])
    variance_only = np.concatenate([rng.normal(0.0, 0.5, 1500), rng.normal(0.0, 3.0, 1500)])
    constant = np.full(3000, 0.75)
    # A loss-like stream: positive, skewed, with two level changes (several detections and resets).
    loss_like = np.concatenate([rng.exponential(0.3, 1000), rng.exponential(0.9, 1000), rng.exponential(0.4, 1000)])
    bernoulli = np.concatenate([rng.binomial(1, 0.2, 1200), rng.binomial(1, 0.6, 1200)]).astype(float)
    default = {}
    eager = {"delta": 0.01, "clock": 1, "max_buckets": 3, "min_window_length": 10, "grace_period": 30}
    return [
        ("mean_shift", default, mean_shift),
        ("variance_only", default, variance_only),
        ("constant", default, constant),
        ("loss_like", default, loss_like),
        ("bernoulli_eager", eager, bernoulli),
        ("mean_shift_eager", eager, mean_shift),
    ]


def run(params, stream):
    adwin = ADWIN(**params)
    detections, probes = [], []
    for i, x in enumerate(stream):
        adwin.update(float(x))
        if adwin.drift_detected:
            detections.append(i)
        if i % PROBE_EVERY == PROBE_EVERY - 1 or adwin.drift_detected:
            probes.append({"index": i, "width": adwin.width, "estimation": adwin.estimation, "variance": adwin.variance})
    return detections, probes


def main():
    cases = []
    for name, params, stream in streams():
        detections, probes = run(params, stream)
        cases.append({"name": name, "params": params, "stream": [float(x) for x in stream],
                      "detections": detections, "probes": probes})
        print(f"{name}: {len(detections)} detection(s) at {detections[:10]}")
    OUT.write_text(json.dumps({"river_version": river.__version__, "generator": "scripts/stats/adwin_reference.py",
                               "cases": cases}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
