import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { VersionWindow } from '../../src/metrics/windows.js';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { tritonStats } from '../../src/frontend/codec/triton-model.js';
import { PrometheusExporter } from '../../src/metrics/prometheus.js';
import { mergeExpositionLines, mergeSnapshots, snapshotMetrics, type MetricsSnapshot } from '../../src/metrics/snapshot.js';
import { Metrics, ResilienceCounters, type VersionMetrics } from '../../src/metrics/version-metrics.js';
import { projectRoot } from '../../src/paths.js';
import { applyOp, type Op } from '../fixtures/metrics-ops.mjs';
import { mulberry32 } from '../helpers/random.js';

const VERSIONS: Array<[string, string]> = [['alpha', '1'], ['alpha', '2'], ['beta', '1'], ['gamma', '7'], ['delta', '3']];
const CODES = ['MALFORMED_REQUEST', 'MODEL_NOT_FOUND', 'OVERLOADED', 'DEADLINE_EXCEEDED', 'CIRCUIT_OPEN'];

/** `n` observations of every kind the engine records, each assigned to one of `threads` threads. */
function generate(seed: number, n: number, threads: number): Array<{ op: Op; thread: number }> {
  const r = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  // Log-uniform from 1 us to 2 s, fractional like performance.now() differences; now and then
  // beyond the histograms' 60 s range, which makes them grow (autoResize).
  const ms = () => (r() < 0.002 ? 61_000 + r() * 20_000 : Math.exp(Math.log(0.001) + r() * Math.log(2e6)));
  const rows = () => 1 + Math.floor(r() ** 3 * 256);
  let now = 1_760_000_000_000;
  const out: Array<{ op: Op; thread: number }> = [];
  for (let i = 0; i < n; i++) {
    const [model, version] = pick(VERSIONS);
    const at = { model, version };
    const kind = r();
    now += Math.floor(r() * 50);
    let op: Op;
    if (kind < 0.35) op = { k: 'success', ...at, ms: ms(), rows: rows(), now };
    else if (kind < 0.42) op = { k: 'failure', ...at, ms: ms() };
    else if (kind < 0.55) op = { k: 'execution', ...at, rows: rows(), ms: ms(), requests: 1 + Math.floor(r() * 16) };
    else if (kind < 0.7) op = { k: 'queue', ...at, ms: ms() };
    else if (kind < 0.8) op = { k: 'inline', ...at, rows: rows(), ms: ms() };
    else if (kind < 0.87) op = { k: 'error', code: pick(CODES) };
    else if (kind < 0.9) op = { k: 'transition', ...at, ...pick([{ from: 'closed', to: 'open' }, { from: 'open', to: 'half_open' }, { from: 'half_open', to: 'closed' }]) };
    else if (kind < 0.94) op = { k: 'fallback', ...at, policy: pick(['default', 'version']), reason: pick(['error', 'deadline', 'circuit_open']) };
    else op = { k: 'cache', ...at, hits: Math.floor(r() * 5), misses: Math.floor(r() * 3), evictions: Math.floor(r() * 2) };
    out.push({ op, thread: Math.floor(r() * threads) });
  }
  return out;
}

/** A Metrics with every version made at once (as loading does), then `ops` recorded. */
function record(ops: Op[]): Metrics {
  const m = new Metrics();
  for (const [model, version] of VERSIONS) m.of(model, version);
  for (const op of ops) applyOp(m, op);
  return m;
}

const PERCENTILES = [0, 0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100];
const sortedEntries = <K, V>(m: Map<K, V>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

/**
 * Every field of a VersionMetrics, in comparable form. Histograms: count, mean, deviation, exact
 * min and max, and many percentiles. An unknown kind of field fails, so a field added later
 * gets compared too. The live gauges (breaker state, cache size) are in gauges().
 */
function figures(m: VersionMetrics): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v === 'number' || typeof v === 'string') out[k] = v;
    else if (v instanceof Map) out[k] = sortedEntries(v);
    else if (v instanceof hdr.JsHistogram) {
      out[k] = {
        totalCount: v.totalCount, mean: v.mean, stdDeviation: v.stdDeviation, min: v.minNonZeroValue, max: v.maxValue,
        percentiles: PERCENTILES.map((p) => v.getValueAtPercentile(p)),
      };
    } else if (v instanceof ResilienceCounters) {
      out[k] = {
        transitions: sortedEntries(v.transitions), fallbacks: sortedEntries(v.fallbacks),
        hits: v.cacheHits, misses: v.cacheMisses, evictions: v.cacheEvictions,
      };
    } else if (v instanceof VersionWindow) {
      // Not part of /metrics snapshots: windows cross threads on their own (test/unit/windows.test.ts).
      continue;
    } else throw new Error(`VersionMetrics.${k} is not compared here: extend figures()`);
  }
  return out;
}

const gauges = (m: VersionMetrics) => ({ breakers: m.resilience.breakersByState(), cache: m.resilience.cacheSize?.() });

function expectSameFigures(merged: Metrics, whole: Metrics): void {
  const key = (m: VersionMetrics) => `${m.model}/${m.version}`;
  expect(merged.all().map(key).sort()).toEqual(whole.all().map(key).sort());
  for (const w of whole.all()) {
    const m = merged.of(w.model, w.version);
    expect(figures(m), key(w)).toEqual(figures(w));
    expect(tritonStats(m), key(w)).toEqual(tritonStats(w));
  }
  expect(sortedEntries(merged.errors)).toEqual(sortedEntries(whole.errors));
}

/** The text before prom-client's process metrics (which change from one call to the next). */
async function engineText(source: { metrics: Metrics; lines: string[] }): Promise<string> {
  const text = await new PrometheusExporter(async () => source).text();
  const cut = text.indexOf('# HELP sluice_process_');
  expect(cut).toBeGreaterThan(0);
  return text.slice(0, cut);
}

const FRONT_END_LINES = [
  '# HELP sluice_http_requests_total HTTP requests answered, by route and status.',
  '# TYPE sluice_http_requests_total counter',
  'sluice_http_requests_total{route="infer",status="200"} 41',
  'sluice_http_requests_total{route="infer",status="400"} 3',
  '# HELP sluice_admission_in_flight Requests admitted and not yet answered.',
  '# TYPE sluice_admission_in_flight gauge',
  'sluice_admission_in_flight 2',
  '# HELP sluice_event_loop_lag_seconds Smoothed event-loop lag measured by the admission probe.',
  '# TYPE sluice_event_loop_lag_seconds gauge',
  'sluice_event_loop_lag_seconds 0.0042',
];

describe('metrics snapshots merged across threads', () => {
  const ops = generate(20261201, 6000, 3);
  const whole = record(ops.map((o) => o.op));
  const parts = [0, 1, 2].map((t) => record(ops.filter((o) => o.thread === t).map((o) => o.op)));

  it('merges three threads\' snapshots into exactly what one Metrics recording everything holds', () => {
    // The data must exercise what it claims to: all three threads, grown histograms, errors.
    for (const p of parts) expect(p.all().reduce((n, v) => n + v.success, 0)).toBeGreaterThan(100);
    expect(whole.all().some((v) => v.latency.maxValue > 60_000_000)).toBe(true);
    expect(whole.errors.size).toBe(CODES.length);

    const merged = mergeSnapshots(parts.map((p, t) => snapshotMetrics(p, t)));
    expectSameFigures(merged.metrics, whole);
    for (const v of merged.metrics.all()) expect(gauges(v)).toEqual({ breakers: undefined, cache: undefined });
    expect(merged.lines).toEqual([]);
  });

  it('gives the same result whatever order the snapshots arrive in', () => {
    const snaps = parts.map((p, t) => snapshotMetrics(p, t));
    const a = mergeSnapshots(snaps).metrics;
    const b = mergeSnapshots([snaps[2]!, snaps[0]!, snaps[1]!]).metrics;
    expect(b.all().map(figures)).toEqual(a.all().map(figures));
    expect([...b.errors]).toEqual([...a.errors]);
  });

  it('renders merged metrics as Prometheus text with the same series and values as one Metrics', async () => {
    const merged = mergeSnapshots(parts.map((p, t) => snapshotMetrics(p, t)));
    // Error codes may come first-seen in another order, so compare the lines as a set.
    const lines = (t: string) => t.split('\n').sort();
    expect(lines(await engineText(merged))).toEqual(lines(await engineText({ metrics: whole, lines: [] })));
  });

  it('survives structuredClone: data only, merging the clone gives the same figures', () => {
    const snaps = parts.map((p, t) => snapshotMetrics(p, t, FRONT_END_LINES));
    const clones = snaps.map((s) => structuredClone(s));
    expect(clones).toEqual(snaps);
    expect(mergeSnapshots(clones).metrics.all().map(figures)).toEqual(mergeSnapshots(snaps).metrics.all().map(figures));
  });

  it('takes the breaker state and cache size at snapshot time: breakers counted by state, caches summed', () => {
    const states = ['open', 'open', 'half_open'] as const;
    const snaps = parts.map((p, t) => {
      const r = p.of('alpha', '2').resilience;
      let state: 'closed' | 'open' | 'half_open' = 'closed';
      r.breakerState = () => state;
      r.cacheSize = () => ({ entries: 10 * (t + 1), bytes: 1000 * (t + 1) });
      state = states[t]!;
      const snap = snapshotMetrics(p, t);
      state = 'closed'; // a later change must not reach the snapshot
      return snap;
    });
    const merged = mergeSnapshots(snaps).metrics;
    expect(gauges(merged.of('alpha', '2'))).toEqual({ breakers: { closed: 0, open: 2, half_open: 1 }, cache: { entries: 60, bytes: 6000 } });
    expect(gauges(merged.of('alpha', '1'))).toEqual({ breakers: undefined, cache: undefined });
    // A merge of merges (snapshots of merged metrics) keeps the counts.
    const again = mergeSnapshots([snapshotMetrics(merged, 0), snapshotMetrics(merged, 1)]).metrics;
    expect(gauges(again.of('alpha', '2'))).toEqual({ breakers: { closed: 0, open: 4, half_open: 2 }, cache: { entries: 120, bytes: 12000 } });
    for (const p of parts) {
      p.of('alpha', '2').resilience.breakerState = undefined;
      p.of('alpha', '2').resilience.cacheSize = undefined;
    }
  });

  it('renders one thread\'s merged snapshot exactly as that thread\'s own Metrics (process metrics aside)', async () => {
    const one = record(ops.map((o) => o.op));
    const r = one.of('beta', '1').resilience;
    r.breakerState = () => 'half_open';
    r.cacheSize = () => ({ entries: 12, bytes: 3456 });
    const own = await engineText({ metrics: one, lines: FRONT_END_LINES });
    expect(own).toContain('sluice_circuit_breaker_state{model="beta",version="1",state="half_open"} 1');
    expect(own).toContain('sluice_prediction_cache_bytes{model="beta",version="1"} 3456');
    expect(own).toContain('sluice_event_loop_lag_seconds 0.0042');
    expect(await engineText(mergeSnapshots([snapshotMetrics(one, 0, FRONT_END_LINES)]))).toBe(own);
  });

  it('merges a snapshot posted by a real worker thread with the main thread\'s own', async () => {
    const dist = (f: string) => pathToFileURL(path.join(projectRoot, 'dist/src/metrics', f)).href;
    const thread = (t: number, breaker: string, cache: { entries: number; bytes: number }) =>
      new Promise<MetricsSnapshot>((resolve, reject) => {
        const w = new Worker(new URL('../fixtures/metrics-snapshot-worker.mjs', import.meta.url), {
          workerData: {
            metricsModule: dist('version-metrics.js'), snapshotModule: dist('snapshot.js'),
            versions: VERSIONS, ops: ops.filter((o) => o.thread === t).map((o) => o.op),
            guarded: ['gamma', '7'], breaker, cache, thread: t,
            lines: [...FRONT_END_LINES.slice(0, 3), `sluice_http_requests_total{route="infer",status="200"} ${t}`],
          },
        });
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`worker exited (${code}) before posting`)));
      });
    const [one, two] = await Promise.all([thread(1, 'open', { entries: 5, bytes: 50 }), thread(2, 'half_open', { entries: 7, bytes: 70 })]);
    // The main thread (thread 0) records its own share, with its own breaker and cache.
    const main = parts[0]!;
    const r = main.of('gamma', '7').resilience;
    r.breakerState = () => 'closed';
    r.cacheSize = () => ({ entries: 1, bytes: 10 });
    const merged = mergeSnapshots([two!, snapshotMetrics(main, 0, FRONT_END_LINES.slice(0, 3)), one!]);
    r.breakerState = undefined;
    r.cacheSize = undefined;

    expectSameFigures(merged.metrics, whole);
    expect(gauges(merged.metrics.of('gamma', '7'))).toEqual({ breakers: { closed: 1, open: 1, half_open: 1 }, cache: { entries: 13, bytes: 130 } });
    expect(merged.lines).toEqual([
      '# HELP sluice_http_requests_total HTTP requests answered, by route and status.',
      '# TYPE sluice_http_requests_total counter',
      'sluice_http_requests_total{route="infer",status="200"} 126', // 41 x 3 + 1 + 2
    ]);
  });
});

describe('histogram snapshots', () => {
  it('merge an empty histogram as empty, and refuse one of another precision (INTERNAL)', () => {
    const empty = new Metrics();
    empty.of('a', '1');
    const merged = mergeSnapshots([snapshotMetrics(empty, 0)]).metrics.of('a', '1');
    expect(figures(merged)).toEqual(figures(empty.of('a', '1')));
    expect(merged.latency.totalCount).toBe(0);

    const m = new Metrics();
    m.of('a', '1').observeSuccess(1.5, 1);
    const snap = snapshotMetrics(m, 0);
    snap.versions[0]!.latency.digits = 2;
    expect(() => mergeSnapshots([snap])).toThrow(SluiceError);
    expect(() => mergeSnapshots([snap])).toThrow(/precision/);
  });
});

describe('mergeExpositionLines', () => {
  it('sums identical series, keeps other labels apart, one HELP and TYPE per metric, order first seen', () => {
    const a = [
      '# HELP req_total Requests.',
      '# TYPE req_total counter',
      'req_total{route="infer",status="200"} 5',
      'req_total{route="infer",status="400"} 1',
      '# HELP in_flight In flight.',
      '# TYPE in_flight gauge',
      'in_flight 2',
      '# HELP lag_seconds Lag (not additive: one series per thread).',
      '# TYPE lag_seconds gauge',
      'lag_seconds{thread="0"} 0.004',
    ];
    const b = [
      '# HELP req_total Requests.',
      '# TYPE req_total counter',
      'req_total{status="200",route="infer"} 7', // the same series, labels in another order
      'req_total{route="metrics",status="200"} 2',
      '# HELP only_b Only on thread 1.',
      '# TYPE only_b counter',
      'only_b 9',
      '# HELP in_flight In flight.',
      '# TYPE in_flight gauge',
      'in_flight 3',
      '# HELP lag_seconds Lag (not additive: one series per thread).',
      '# TYPE lag_seconds gauge',
      'lag_seconds{thread="1"} 0.002',
    ];
    expect(mergeExpositionLines([a, b])).toEqual([
      '# HELP req_total Requests.',
      '# TYPE req_total counter',
      'req_total{route="infer",status="200"} 12',
      'req_total{route="infer",status="400"} 1',
      'req_total{route="metrics",status="200"} 2',
      '# HELP in_flight In flight.',
      '# TYPE in_flight gauge',
      'in_flight 5',
      '# HELP lag_seconds Lag (not additive: one series per thread).',
      '# TYPE lag_seconds gauge',
      'lag_seconds{thread="0"} 0.004',
      'lag_seconds{thread="1"} 0.002',
      '# HELP only_b Only on thread 1.',
      '# TYPE only_b counter',
      'only_b 9',
    ]);
  });

  it('keeps one thread\'s lines as they are', () => {
    expect(mergeExpositionLines([FRONT_END_LINES])).toEqual(FRONT_END_LINES);
  });

  it('reads label values with escaped quotes, commas and braces', () => {
    const a = ['x{path="/a,\\"b}\\"",k="v"} 1', 'x{path="/a",k="v"} 1'];
    const b = ['x{k="v",path="/a,\\"b}\\""} 2'];
    expect(mergeExpositionLines([a, b])).toEqual(['x{path="/a,\\"b}\\"",k="v"} 3', 'x{path="/a",k="v"} 1']);
  });

  it('keeps a summary\'s samples in its family: sums _sum and _count, per-thread quantiles apart', () => {
    const thread = (t: number, q: number, sum: number, count: number) => [
      '# HELP d Durations.', '# TYPE d summary',
      `d{quantile="0.5",thread="${t}"} ${q}`, `d_sum ${sum}`, `d_count ${count}`,
      '# HELP e E.', '# TYPE e counter', `e_total ${t + 1}`,
    ];
    expect(mergeExpositionLines([thread(0, 0.1, 3, 30), thread(1, 0.2, 4, 40)])).toEqual([
      '# HELP d Durations.', '# TYPE d summary',
      'd{quantile="0.5",thread="0"} 0.1', 'd_sum 7', 'd_count 70', 'd{quantile="0.5",thread="1"} 0.2',
      '# HELP e E.', '# TYPE e counter', 'e_total 3',
    ]);
  });

  it('handles +Inf and refuses lines it cannot read (INTERNAL)', () => {
    expect(mergeExpositionLines([['g 1'], ['g +Inf']])).toEqual(['g +Inf']);
    for (const bad of ['g', 'g{a="1" 2', 'g{a=1} 2', 'g one', '{a="1"} 2']) {
      let err: unknown;
      try {
        mergeExpositionLines([[bad]]);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(SluiceError);
      expect((err as SluiceError).code, bad).toBe('INTERNAL');
    }
  });
});

describe('routed latency (per model, variant and version) merged across threads', () => {
  const VARIANTS: Array<[string, string, string]> = [['alpha', 'control', '1'], ['alpha', 'treatment', '2'], ['beta', 'only', '1'], ['alpha', 'treatment', '3']];
  const r = mulberry32(7);
  const obs = Array.from({ length: 5000 }, () => ({
    at: VARIANTS[Math.floor(r() * VARIANTS.length)]!,
    ms: r() < 0.002 ? 61_000 + r() * 1000 : Math.exp(Math.log(0.001) + r() * Math.log(2e5)),
    thread: Math.floor(r() * 3),
  }));
  const recordRouted = (list: typeof obs) => {
    const m = new Metrics();
    for (const o of list) m.routedOf(...o.at).observe(o.ms);
    return m;
  };
  const histo = (h: hdr.Histogram) => ({ n: h.totalCount, mean: h.mean, min: h.minNonZeroValue, max: h.maxValue, p: PERCENTILES.map((p) => h.getValueAtPercentile(p)) });
  const byKey = (m: Metrics) => Object.fromEntries(m.allRouted().map((x) => [`${x.model}/${x.variant}/${x.version}`, histo(x.latency)]));

  it('merges (through structuredClone) into exactly one histogram recording everything, and renders the same summary lines', async () => {
    const whole = recordRouted(obs);
    const snaps = [0, 1, 2].map((t) => structuredClone(snapshotMetrics(recordRouted(obs.filter((o) => o.thread === t)), t)));
    expect(snaps.every((s) => s.routed.length === VARIANTS.length)).toBe(true);
    const merged = mergeSnapshots(snaps).metrics;
    expect(byKey(merged)).toEqual(byKey(whole));
    expect(whole.allRouted().some((x) => x.latency.maxValue > 60_000_000)).toBe(true); // grown past 60 s
    const routedLines = async (m: Metrics) => (await engineText({ metrics: m, lines: [] })).split('\n').filter((l) => l.includes('sluice_routed_request_duration_seconds')).sort();
    const lines = await routedLines(merged);
    expect(lines).toEqual(await routedLines(whole));
    const count = obs.filter((o) => o.at[0] === 'alpha' && o.at[1] === 'treatment' && o.at[2] === '2').length;
    expect(lines).toContain(`sluice_routed_request_duration_seconds_count{model="alpha",variant="treatment",version="2"} ${count}`);
    expect(lines.filter((l) => l.startsWith('sluice_routed_request_duration_seconds{model="beta",variant="only",version="1",quantile='))).toHaveLength(4);
  });
});
