/**
 * The performance reporter (src/control/performance.ts) over real Metrics: each row holds the
 * requests of its interval only (lifetime differences, percentiles of the interval's latencies
 * alone), versions the registry does not know are skipped, other registry errors surface.
 */
import { describe, expect, it } from 'vitest';
import { PerformanceReporter } from '../../src/control/performance.js';
import { SluiceError } from '../../src/errors.js';
import { Metrics } from '../../src/metrics/version-metrics.js';
import { latencyHistogram } from '../../src/metrics/latency-histogram.js';
import type { PerformanceInput } from '../../src/registry/types.js';

function reporter(metrics: Metrics, served: Array<{ model: string; version: string }>, record: (m: string, v: string, row: PerformanceInput) => Promise<unknown>) {
  return new PerformanceReporter({ intervalMs: 1000, replica: 'r1', metrics: async () => metrics, served: () => served, record });
}

describe('PerformanceReporter', () => {
  it('writes each interval\'s own requests, error rate and latency percentiles', async () => {
    const metrics = new Metrics();
    const m = metrics.of('m', '1');
    const rows: Array<[string, string, PerformanceInput]> = [];
    const r = reporter(metrics, [{ model: 'm', version: '1' }], async (model, v, row) => rows.push([model, v, row]));
    // Interval 1: 100 fast answers (1 ms), 10 failures.
    for (let i = 0; i < 100; i++) m.observeSuccess(1, 1);
    for (let i = 0; i < 10; i++) m.observeFailure(1, 'MODEL_ERROR');
    await r.tick();
    // Interval 2: 50 slow answers (20 ms), no failure.
    for (let i = 0; i < 50; i++) m.observeSuccess(20, 1);
    await r.tick();
    // Interval 3: nothing.
    await r.tick();
    expect(rows.map(([model, v]) => `${model}@${v}`)).toEqual(['m@1', 'm@1', 'm@1']);
    const [first, second, third] = rows.map((x) => x[2]);
    expect(first).toMatchObject({ predictionCount: 100, errorRate: 10 / 110, extra: { replica: 'r1', interval_ms: 1000, requests: 110, errors: 10 } });
    expect(first!.p99Ms).toBeCloseTo(1, 2);
    // The second interval's percentiles are its own 20 ms answers, not mixed with the first's.
    expect(second).toMatchObject({ predictionCount: 50, errorRate: 0, extra: { requests: 50, errors: 0 } });
    expect(second!.p50Ms).toBeCloseTo(20, 1);
    expect(second!.p95Ms).toBeCloseTo(20, 1);
    const h = latencyHistogram();
    h.recordValue(20_000);
    expect(second!.p50Ms).toBe(h.getValueAtPercentile(50) / 1000);
    expect(third).toMatchObject({ predictionCount: 0 });
    expect(third!.p50Ms).toBeUndefined();
    expect(third!.errorRate).toBeUndefined();
    for (const row of [first, second, third]) {
      expect(row!.cpuPercent).toBeGreaterThanOrEqual(0);
      expect(row!.memoryBytes).toBeGreaterThan(10 * 1024 * 1024);
    }
  });

  it('skips versions the registry does not know and keeps going; other errors surface', async () => {
    const metrics = new Metrics();
    metrics.of('a', '1').observeSuccess(2, 1);
    metrics.of('b', '9').observeSuccess(2, 1);
    const written: string[] = [];
    const served = [{ model: 'x', version: '1' }, { model: 'b', version: '9' }, { model: 'a', version: '1' }];
    const r = reporter(metrics, served, async (model, v) => {
      if (model === 'x') throw new SluiceError('MODEL_NOT_FOUND', 'no model x');
      if (model === 'b') throw new SluiceError('VERSION_NOT_FOUND', 'no version 9');
      written.push(`${model}@${v}`);
    });
    expect((await r.tick()).map((w) => `${w.model}@${w.version}`)).toEqual(['a@1']);
    expect(written).toEqual(['a@1']);
    const broken = reporter(metrics, served.slice(2), async () => {
      throw new SluiceError('REGISTRY_UNAVAILABLE', 'down');
    });
    await expect(broken.tick()).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
  });
});
