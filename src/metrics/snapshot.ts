/**
 * Metrics across I/O threads (issue #11, docs/io-threads.md): each thread records into its own
 * `Metrics`; when `/metrics` or statistics are asked for, each thread sends
 * `snapshotMetrics(...)` by postMessage (data only: structured clone copies it) and the main
 * thread builds one `Metrics` with `mergeSnapshots`, which the existing readers
 * (PrometheusExporter, tritonStats) read as they read a single thread's.
 *
 * Merged figures are exact: counters and nanosecond totals are integer sums, histograms hold
 * the summed bucket counts (every percentile, mean and total is what one histogram recording
 * every thread's observations would give), lastInference is the latest of the threads'. Each
 * thread has its own circuit breaker and prediction cache per version, so the merged breaker
 * state counts the threads in each state and the cache sizes are summed.
 */
import { addHistogramSnapshot, snapshotHistogram, type HistogramSnapshot } from './histogram-snapshot.js';
import { mergeExpositionLines } from './exposition-merge.js';
import { Metrics, type BreakerTally, type VersionMetrics } from './version-metrics.js';

export type { HistogramSnapshot } from './histogram-snapshot.js';
export { mergeExpositionLines } from './exposition-merge.js';

/** The plain number fields of VersionMetrics that merge by summing. */
const SUMMED = [
  'success', 'failure', 'rows', 'executions', 'queued', 'computed',
  'successNs', 'failureNs', 'queueNs', 'computeNs',
] as const;
type Summed = (typeof SUMMED)[number];

// Compile-time guard: a number field added to VersionMetrics must be listed in SUMMED (or be
// lastInference, merged by max), or this line stops compiling.
type NumberFields = { [K in keyof VersionMetrics]: VersionMetrics[K] extends number ? K : never }[keyof VersionMetrics];
const everyNumberFieldMerges: [Exclude<NumberFields, Summed | 'lastInference'>] extends [never] ? true : never = true;
void everyNumberFieldMerges;

const HISTOGRAMS = ['latency', 'queue', 'compute', 'batchRows'] as const;

export interface ResilienceSnapshot {
  /** Breaker transitions by "from>to". */
  transitions: Array<[string, number]>;
  /** Fallback answers by "policy>reason". */
  fallbacks: Array<[string, number]>;
  cacheHits: number;
  cacheMisses: number;
  cacheEvictions: number;
  /**
   * Breakers in each state when the snapshot was taken (one thread: 1 for its breaker's state),
   * absent when the version has no breaker.
   */
  breakers?: BreakerTally;
  /** The cache's size when the snapshot was taken, absent when the version has no cache. */
  cacheSize?: { entries: number; bytes: number };
}

export interface VersionSnapshot extends Record<Summed, number> {
  model: string;
  version: string;
  lastInference: number;
  /**
   * For each batch size seen (`rows[i]`), its executions and their total ns. Typed arrays, like
   * the histograms': a model with max_batch_size 1024 can have ~1,000 sizes, which clone as
   * three memory copies rather than 1,000 small arrays.
   */
  executionsByRows: { rows: Float64Array; count: Float64Array; ns: Float64Array };
  latency: HistogramSnapshot;
  queue: HistogramSnapshot;
  compute: HistogramSnapshot;
  batchRows: HistogramSnapshot;
  resilience: ResilienceSnapshot;
}

/**
 * One thread's metrics as data: plain objects, arrays, numbers, strings and the histograms'
 * typed arrays (see histogram-snapshot.ts); no functions, Maps or class instances, so
 * postMessage's structured clone copies it as is.
 */
/** The latency of one route variant's answers (RoutedMetrics) as data. */
export interface RoutedSnapshot {
  model: string;
  variant: string;
  version: string;
  latency: HistogramSnapshot;
}

export interface MetricsSnapshot {
  /** The I/O thread that took it (merges go in thread order, so output order is stable). */
  thread: number;
  versions: VersionSnapshot[];
  /** Routed answers' latency by model, variant and version. */
  routed: RoutedSnapshot[];
  /** Errors returned to clients, by code. */
  errors: Array<[string, number]>;
  /** Extra Prometheus exposition lines the thread's front ends own (see mergeExpositionLines). */
  lines: string[];
}

function snapshotExecutions(byRows: VersionMetrics['executionsByRows']): VersionSnapshot['executionsByRows'] {
  const n = byRows.size;
  const out = { rows: new Float64Array(n), count: new Float64Array(n), ns: new Float64Array(n) };
  let i = 0;
  for (const [rows, s] of byRows) {
    out.rows[i] = rows;
    out.count[i] = s.count;
    out.ns[i++] = s.ns;
  }
  return out;
}

function snapshotVersion(m: VersionMetrics): VersionSnapshot {
  const r = m.resilience;
  const resilience: ResilienceSnapshot = {
    transitions: [...r.transitions],
    fallbacks: [...r.fallbacks],
    cacheHits: r.cacheHits,
    cacheMisses: r.cacheMisses,
    cacheEvictions: r.cacheEvictions,
  };
  const breakers = r.breakersByState();
  if (breakers) resilience.breakers = { ...breakers };
  const size = r.cacheSize?.();
  if (size) resilience.cacheSize = { entries: size.entries, bytes: size.bytes };
  const v = {
    model: m.model,
    version: m.version,
    lastInference: m.lastInference,
    executionsByRows: snapshotExecutions(m.executionsByRows),
    latency: snapshotHistogram(m.latency),
    queue: snapshotHistogram(m.queue),
    compute: snapshotHistogram(m.compute),
    batchRows: snapshotHistogram(m.batchRows),
    resilience,
  } as VersionSnapshot;
  for (const k of SUMMED) v[k] = m[k];
  return v;
}

export function snapshotMetrics(metrics: Metrics, thread: number, lines: string[] = []): MetricsSnapshot {
  return {
    thread,
    versions: metrics.all().map(snapshotVersion),
    routed: metrics.allRouted().map((r) => ({ model: r.model, variant: r.variant, version: r.version, latency: snapshotHistogram(r.latency) })),
    errors: [...metrics.errors],
    lines: [...lines],
  };
}

function addCounts(into: Map<string, number>, from: Array<[string, number]>): void {
  for (const [k, n] of from) into.set(k, (into.get(k) ?? 0) + n);
}

function addVersion(m: VersionMetrics, v: VersionSnapshot): void {
  for (const k of SUMMED) m[k] += v[k];
  m.lastInference = Math.max(m.lastInference, v.lastInference);
  const e = v.executionsByRows;
  for (let i = 0; i < e.rows.length; i++) {
    const rows = e.rows[i]!;
    const count = e.count[i]!;
    const ns = e.ns[i]!;
    const s = m.executionsByRows.get(rows);
    if (s) {
      s.count += count;
      s.ns += ns;
    } else m.executionsByRows.set(rows, { count, ns });
  }
  for (const h of HISTOGRAMS) addHistogramSnapshot(m[h], v[h]);
  const r = m.resilience;
  const s = v.resilience;
  addCounts(r.transitions, s.transitions);
  addCounts(r.fallbacks, s.fallbacks);
  r.cacheHits += s.cacheHits;
  r.cacheMisses += s.cacheMisses;
  r.cacheEvictions += s.cacheEvictions;
  if (s.breakers) {
    const t = (r.breakerThreads ??= { closed: 0, open: 0, half_open: 0 });
    t.closed += s.breakers.closed;
    t.open += s.breakers.open;
    t.half_open += s.breakers.half_open;
  }
  if (s.cacheSize) {
    const prev = r.cacheSize?.() ?? { entries: 0, bytes: 0 };
    const sum = { entries: prev.entries + s.cacheSize.entries, bytes: prev.bytes + s.cacheSize.bytes };
    r.cacheSize = () => sum;
  }
}

/**
 * One fresh `Metrics` holding every snapshot's figures summed, and the snapshots' extra lines
 * merged. Snapshots are taken in thread order whatever order they arrived in; versions, route
 * variants and error codes appear in the order first seen.
 */
export function mergeSnapshots(snaps: MetricsSnapshot[]): { metrics: Metrics; lines: string[] } {
  const ordered = [...snaps].sort((a, b) => a.thread - b.thread);
  const metrics = new Metrics();
  for (const snap of ordered) {
    for (const v of snap.versions) addVersion(metrics.of(v.model, v.version), v);
    for (const r of snap.routed) addHistogramSnapshot(metrics.routedOf(r.model, r.variant, r.version).latency, r.latency);
    addCounts(metrics.errors, snap.errors);
  }
  return { metrics, lines: mergeExpositionLines(ordered.map((s) => s.lines)) };
}
