/**
 * The drift monitor (src/analyze/drift-monitor.ts) and the request-path sampler that feeds it
 * (src/analyze/drift-sampler.ts), on seeded data and a test clock: a stationary stream is not
 * drifted; a shifted feature is, and the report names it; the prediction, data quality, the
 * error stream and window restarts each do what the header says.
 */
import { describe, expect, it } from 'vitest';
import { DRIFT_KS_ALPHA, DRIFT_MIN_WINDOW_ROWS, DriftMonitor } from '../../src/analyze/drift-monitor.js';
import { DRIFT_BUFFER_REQUESTS, DRIFT_ROWS_PER_REQUEST, DriftSampler, type DriftBatch } from '../../src/analyze/drift-sampler.js';
import type { Manifest } from '../../src/model/manifest.js';
import { mulberry32 } from '../helpers/random.js';

/** Standard normal draws (Box-Muller over mulberry32). */
function normals(seed: number): () => number {
  const r = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

interface Rows {
  features: number;
  /** Value of feature j of a row (given a fresh normal draw z). */
  value?: (j: number, z: number) => number;
  /** The prediction of a row from its features. */
  predict?: (x: Float32Array) => number;
  failed?: (i: number) => boolean;
}

/** A batch as a thread hands it over: `n` sampled requests of one row each. */
function batch(n: number, seed: number, o: Rows): DriftBatch {
  const z = normals(seed);
  const f = o.features;
  const x = new Float32Array(n * f);
  const rowPredictions = new Float32Array(n);
  const predictions = new Float64Array(n);
  const failed = new Uint8Array(n);
  let rows = 0;
  for (let i = 0; i < n; i++) {
    if (o.failed?.(i)) {
      failed[i] = 1;
      predictions[i] = NaN;
      continue;
    }
    const row = x.subarray(rows * f, (rows + 1) * f);
    for (let j = 0; j < f; j++) row[j] = o.value ? o.value(j, z()) : z();
    const p = o.predict ? o.predict(row) : 1 / (1 + Math.exp(-row[0]!));
    rowPredictions[rows] = p;
    predictions[i] = p;
    rows++;
  }
  return { model: 'm', version: '1', features: f, rows, x: x.slice(0, rows * f), rowPredictions: rowPredictions.slice(0, rows), requests: n, predictions, failed, dropped: 0 };
}

function monitor(referenceRows = 1000, windowMs = 60_000) {
  const clock = { now: 1_000_000 };
  const m = new DriftMonitor({ referenceRows, windowMs, seed: 7, now: () => clock.now });
  return { m, clock };
}

describe('DriftMonitor', () => {
  it('collects the reference first, then judges the window', () => {
    const { m } = monitor(1000);
    m.ingest(batch(600, 1, { features: 5 }));
    let r = m.report('m').versions[0]!;
    expect(r).toMatchObject({ version: '1', state: 'collecting_reference', reference_rows: 600, window_rows: 0, features: [], prediction: null, drifted: false });
    m.ingest(batch(600, 2, { features: 5 }));
    r = m.report('m').versions[0]!;
    expect(r).toMatchObject({ state: 'monitoring', reference_rows: 1000, window_rows: 200, sampled_requests: 1200 });
    expect(r.features.map((f) => f.index)).toEqual([0, 1, 2, 3, 4]);
    expect(m.report('other')).toEqual({ model: 'other', versions: [] });
    expect(m.driftDetected('other', '1')).toBe(false);
  });

  it('a stationary stream of 100 features is not drifted', () => {
    const { m } = monitor(1000);
    m.ingest(batch(1000, 11, { features: 100 }));
    m.ingest(batch(1000, 12, { features: 100 }));
    const r = m.report('m').versions[0]!;
    expect(r.window_rows).toBe(1000);
    expect(r.reasons).toEqual([]);
    expect(r.drifted).toBe(false);
    expect(m.driftDetected('m', '1')).toBe(false);
    for (const f of [...r.features, r.prediction!]) {
      expect(f.psi).toBeLessThan(0.1);
      expect(f.psi_level).toBe('stable');
      expect(f.ks_p).toBeGreaterThan(DRIFT_KS_ALPHA / 101);
      expect(f.missing).toBe(0);
    }
  });

  it('a feature shifted by one standard deviation drifts, and the report names it alone', () => {
    const { m } = monitor(1000);
    m.ingest(batch(1000, 21, { features: 10 }));
    // Feature 3 moves; the prediction reads feature 0 only, so it stays put.
    m.ingest(batch(1000, 22, { features: 10, value: (j, z) => (j === 3 ? z + 1 : z) }));
    const r = m.report('m').versions[0]!;
    expect(r.drifted).toBe(true);
    expect(m.driftDetected('m', '1')).toBe(true);
    expect(r.reasons.length).toBeGreaterThan(0);
    expect(r.reasons.every((s) => s.startsWith('feature 3:'))).toBe(true);
    expect(r.features[3]!.psi).toBeGreaterThanOrEqual(0.25);
    expect(r.features[3]!.psi_level).toBe('significant');
    expect(r.features[3]!.ks_p).toBeLessThan(1e-20);
    expect(r.features[3]!.ks_d).toBeGreaterThan(0.3);
    for (const f of r.features.filter((g) => g.index !== 3)) expect(f.psi).toBeLessThan(0.1);
    expect(r.prediction!.psi).toBeLessThan(0.1);
  });

  it('a shifted prediction drifts as "prediction"', () => {
    const { m } = monitor(500);
    m.ingest(batch(500, 31, { features: 3 }));
    m.ingest(batch(500, 32, { features: 3, predict: (x) => 1 / (1 + Math.exp(-x[0]! - 1.5)) }));
    const r = m.report('m').versions[0]!;
    expect(r.drifted).toBe(true);
    expect(r.reasons.some((s) => s.startsWith('prediction:'))).toBe(true);
    expect(r.prediction!.psi).toBeGreaterThanOrEqual(0.25);
    expect(r.features.every((f) => f.psi! < 0.1)).toBe(true);
  });

  it('counts missing and out-of-range values against the reference baseline', () => {
    const { m } = monitor(500);
    m.ingest(batch(500, 41, { features: 2, value: (_, z) => Math.max(-2, Math.min(2, z)) }));
    // Every 10th row misses feature 0; every 20th has feature 1 far above the reference's max.
    let i = 0;
    m.ingest(batch(400, 42, {
      features: 2,
      value: (j, z) => {
        const row = Math.floor(i++ / 2);
        if (j === 0 && row % 10 === 0) return NaN;
        if (j === 1 && row % 20 === 0) return 50;
        return Math.max(-2, Math.min(2, z));
      },
    }));
    const r = m.report('m').versions[0]!;
    expect(r.features[0]).toMatchObject({ missing: 40, out_of_range: 0 });
    expect(r.features[1]).toMatchObject({ missing: 0, out_of_range: 20 });
  });

  it('a rise in failures among the sampled requests is an error-stream change', () => {
    const { m } = monitor(200);
    m.ingest(batch(2000, 51, { features: 2 }));
    expect(m.report('m').versions[0]!.drifted).toBe(false);
    m.ingest(batch(1000, 52, { features: 2, failed: (i) => i % 2 === 0 }));
    const r = m.report('m').versions[0]!;
    expect(r.sampled_failures).toBe(500);
    expect(r.adwin.errors.detections + r.page_hinkley.errors.detections).toBeGreaterThan(0);
    expect(r.drifted).toBe(true);
    expect(r.reasons.some((s) => s.includes('error stream'))).toBe(true);
    expect(r.reasons.some((s) => s.startsWith('feature'))).toBe(false);
  });

  it('restarts the window every windowMs, judging the previous one until the new one has enough rows', () => {
    const { m, clock } = monitor(500, 10_000);
    m.ingest(batch(500, 61, { features: 2 }));
    m.ingest(batch(400, 62, { features: 2, value: (j, z) => (j === 1 ? z + 2 : z) }));
    const first = m.report('m').versions[0]!;
    expect(first).toMatchObject({ window_rows: 400, drifted: true });
    clock.now += 10_000;
    // The drifted window is still the one judged: the new one is empty.
    m.ingest(batch(DRIFT_MIN_WINDOW_ROWS - 1, 63, { features: 2 }));
    const second = m.report('m').versions[0]!;
    expect(second).toMatchObject({ window_rows: 400, window_started_at: first.window_started_at, drifted: true });
    m.ingest(batch(1, 64, { features: 2 }));
    const third = m.report('m').versions[0]!;
    expect(third).toMatchObject({ window_rows: DRIFT_MIN_WINDOW_ROWS, window_started_at: clock.now, drifted: false });
  });

  it('exposes PSI per feature and the drifted flag as Prometheus gauges', () => {
    const { m } = monitor(500);
    expect(m.metricLines()).toEqual([]);
    m.ingest(batch(500, 71, { features: 2 }));
    m.ingest(batch(500, 72, { features: 2, value: (j, z) => (j === 1 ? z + 2 : z) }));
    const lines = m.metricLines();
    expect(lines).toContain('sluice_drift_detected{model="m",version="1"} 1');
    const psi1 = lines.find((l) => l.startsWith('sluice_drift_psi{model="m",version="1",feature="1"} '));
    expect(Number(psi1!.split(' ')[1])).toBeGreaterThan(0.25);
    expect(lines.some((l) => l.startsWith('sluice_drift_psi{model="m",version="1",feature="prediction"} '))).toBe(true);
  });
});

describe('DriftSampler', () => {
  const manifest = { name: 'm', version: '1', signature: { inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 3] }], outputs: [] } } as unknown as Manifest;
  const input = (rows: number) => [{ name: 'features', datatype: 'FP32' as const, shape: [rows, 3], data: Float32Array.from({ length: rows * 3 }, (_, i) => i) }];

  it('at rate 1 samples every request: its first rows, the first output per row and its mean', () => {
    const s = new DriftSampler(1);
    expect(s.draw()).toBe(true);
    s.answer(manifest, input(2), 2, Float32Array.of(0.25, 0.75));
    s.answer(manifest, input(20), 20, new Float32Array(20).fill(0.5));
    s.failure('m', '1');
    const [b] = s.take();
    expect(b).toMatchObject({ model: 'm', version: '1', features: 3, rows: 2 + DRIFT_ROWS_PER_REQUEST, requests: 3, dropped: 0 });
    expect(Array.from(b!.x.subarray(0, 6))).toEqual([0, 1, 2, 3, 4, 5]);
    expect(Array.from(b!.rowPredictions.subarray(0, 3))).toEqual([0.25, 0.75, 0.5]);
    expect(Array.from(b!.predictions)).toEqual([0.5, 0.5, NaN]);
    expect(Array.from(b!.failed)).toEqual([0, 0, 1]);
    expect(s.take()).toEqual([]);
  });

  it('samples each request with probability rate', () => {
    const s = new DriftSampler(0.1);
    let n = 0;
    for (let i = 0; i < 200_000; i++) if (s.draw()) n++;
    // Binomial(200,000, 0.1): sd 134; six of them.
    expect(Math.abs(n - 20_000)).toBeLessThan(6 * 134);
  });

  it('converts 64-bit integer inputs, and skips (never throws on) values it cannot read', () => {
    const s = new DriftSampler(1);
    s.answer(manifest, [{ name: 'features', datatype: 'INT64', shape: [1, 3], data: BigInt64Array.of(1n, -2n, 3n) }], 1, Float32Array.of(0.5));
    const unreadable = [{ name: 'features', datatype: 'BYTES', shape: [1, 3], data: [Symbol('a'), Symbol('b'), Symbol('c')] }] as unknown as Parameters<DriftSampler['answer']>[1];
    expect(() => s.answer(manifest, unreadable, 1, Float32Array.of(0.5))).not.toThrow();
    const [b] = s.take();
    expect(b!.rows).toBe(1);
    expect(Array.from(b!.x)).toEqual([1, -2, 3]);
  });

  it('keeps a bounded buffer and counts what it drops', () => {
    const s = new DriftSampler(1);
    for (let i = 0; i < DRIFT_BUFFER_REQUESTS + 5; i++) s.answer(manifest, input(1), 1, Float32Array.of(1));
    const [b] = s.take();
    expect(b).toMatchObject({ requests: DRIFT_BUFFER_REQUESTS, dropped: 5 });
  });
});
