/**
 * The canary judge on windows built from seeded samples: a canary failing 20% of requests or 5x
 * slower is unhealthy; a healthy one passes; small samples are inconclusive, never a verdict.
 */
import { describe, expect, it } from 'vitest';
import { judge, type VersionWindow } from '../../src/control/deployments/judge.js';
import { mulberry32 } from '../../src/random.js';

function window(n: number, errorRate: number, medianMs: number, seed: number): VersionWindow {
  const random = mulberry32(seed);
  const bins = new Map<number, number>();
  let errors = 0;
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    if (random() < errorRate) errors++;
    // Log-normal latency, rounded to 0.01 ms (histogram-like ties).
    const u1 = random() || 1e-12;
    const u2 = random();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    const v = Math.round(medianMs * Math.exp(0.3 * z) * 100) / 100;
    values.push(v);
    bins.set(v, (bins.get(v) ?? 0) + 1);
  }
  values.sort((a, b) => a - b);
  return { requests: n, errors, latency: [...bins].sort((a, b) => a[0] - b[0]), p50: n > 0 ? values[Math.ceil(0.5 * n) - 1]! : null, p99: n > 0 ? values[Math.ceil(0.99 * n) - 1]! : null };
}

describe('canary judge', () => {
  const stable = window(2000, 0.002, 2, 1);
  it('fails a canary that fails 20% of its requests, on errors', () => {
    const v = judge(stable, window(200, 0.2, 2, 2));
    expect(v.verdict).toBe('unhealthy');
    expect(v.checks.find((c) => c.name === 'errors')!.state).toBe('failed');
    expect(v.reason).toMatch(/^errors: error rate canary/);
  });
  it('fails a canary 5x slower, on latency', () => {
    const v = judge(stable, window(200, 0.002, 10, 3));
    expect(v.verdict).toBe('unhealthy');
    expect(v.checks.find((c) => c.name === 'latency')!.state).toBe('failed');
  });
  it('passes a healthy canary over many seeds (no false failure at alpha 0.05 thresholds)', () => {
    let failures = 0;
    for (let seed = 10; seed < 110; seed++) if (judge(window(2000, 0.002, 2, seed * 7), window(300, 0.002, 2, seed * 7 + 1)).verdict !== 'healthy') failures++;
    // Both conditions (threshold and significance) must hold to fail: a healthy canary passes.
    expect(failures).toBe(0);
  });
  it('is inconclusive below the minimum requests, and never fails on a handful of errors', () => {
    expect(judge(stable, window(20, 0.002, 2, 4)).verdict).toBe('inconclusive');
    // 1 error in 5 requests: 20%, but not significant.
    expect(judge(stable, { requests: 5, errors: 1, latency: [[2, 5]], p50: 2, p99: 2 }).verdict).toBe('inconclusive');
  });
});

describe('canary judge, shared workers', () => {
  it('fails a slow canary whose queueing also lengthened the stable tail: the medians tell', () => {
    // Stable: fast median, but a tail as long as the canary's (requests queued behind it).
    const stable = { requests: 2000, errors: 0, latency: [[0.5, 1900], [4.5, 100]] as Array<[number, number]>, p50: 0.5, p99: 4.5 };
    const slow = { requests: 200, errors: 0, latency: [[4.3, 150], [5, 50]] as Array<[number, number]>, p50: 4.3, p99: 5 };
    const v = judge(stable, slow);
    expect(v.verdict).toBe('unhealthy');
    expect(v.reason).toMatch(/p50 ratio 8.6/);
  });
});

describe('canary judge, prediction drift', () => {
  const normals = (n: number, mean: number, seed: number) => {
    const random = mulberry32(seed);
    return Float64Array.from({ length: n }, () => mean + Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random()));
  };
  const stable = { ...window(2000, 0.002, 2, 1), predictions: normals(600, 0, 1) };
  it('fails a canary whose predictions moved (mean +1 SD), on drift alone', () => {
    const v = judge(stable, { ...window(300, 0.002, 2, 2), predictions: normals(150, 1, 2) });
    expect(v.verdict).toBe('unhealthy');
    expect(v.checks.map((c) => [c.name, c.state])).toEqual([['errors', 'passed'], ['latency', 'passed'], ['drift', 'failed']]);
    expect(v.reason).toMatch(/^drift: predictions canary vs stable: KS distance 0\.\d+ .* > 0\.2$/);
  });
  it('passes canaries predicting like the stable version over many seeds', () => {
    let failures = 0;
    for (let seed = 10; seed < 110; seed++) {
      const v = judge({ ...stable, predictions: normals(600, 0, seed * 3) }, { ...window(300, 0.002, 2, seed * 3 + 1), predictions: normals(150, 0, seed * 3 + 2) });
      if (v.verdict !== 'healthy') failures++;
    }
    expect(failures).toBe(0);
  });
  it('a significant but small shift stays within the distance threshold', () => {
    // 0.15 SD with 1,000 each: KS p well below 0.05, distance ~0.06 < 0.2.
    const v = judge({ ...stable, predictions: normals(1000, 0, 5) }, { ...window(300, 0.002, 2, 6), predictions: normals(1000, 0.15, 7) });
    expect(v.checks.find((c) => c.name === 'drift')!.state).toBe('passed');
  });
  it('with too few sampled predictions the drift check does not judge, and does not hold the step', () => {
    const v = judge(stable, { ...window(300, 0.002, 2, 8), predictions: normals(10, 3, 9) });
    expect(v.checks.find((c) => c.name === 'drift')).toMatchObject({ state: 'inconclusive', detail: expect.stringMatching(/fewer than 50: not judged/) });
    expect(v.verdict).toBe('healthy');
    expect(judge(stable, window(300, 0.002, 2, 8)).verdict).toBe('healthy'); // no predictions at all (sampling off)
  });
});
