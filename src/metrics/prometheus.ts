/**
 * Prometheus text exposition of Sluice's metrics. Latency summaries come straight from the HDR
 * histograms (exact p50/p90/p99/p99.9 over the process lifetime, which prom-client's sliding
 * summaries cannot give); process metrics come from prom-client's default collectors.
 *
 * With several I/O threads the `Metrics` rendered is the merge of every thread's
 * (src/metrics/snapshot.ts): counts and summaries cover the whole server; the breaker-state
 * gauge counts threads in each state and the cache gauges are summed over the threads' caches.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type * as hdr from 'hdr-histogram-js';
import { BREAKER_STATES, type Metrics, type VersionMetrics } from './version-metrics.js';

const QUANTILES = [0.5, 0.9, 0.99, 0.999];

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(pairs: Record<string, string>): string {
  return '{' + Object.entries(pairs).map(([k, v]) => `${k}="${esc(v)}"`).join(',') + '}';
}

type Histo = (m: VersionMetrics) => hdr.Histogram;

function summary(out: string[], name: string, help: string, vms: VersionMetrics[], pick: Histo, scale: number): void {
  summaryOf(out, name, help, vms.map((m) => [{ model: m.model, version: m.version }, pick(m)]), scale);
}

function summaryOf(out: string[], name: string, help: string, series: Array<[Record<string, string>, hdr.Histogram]>, scale: number): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} summary`);
  for (const [base, h] of series) {
    for (const q of QUANTILES) {
      out.push(`${name}${labels({ ...base, quantile: String(q) })} ${h.totalCount ? h.getValueAtPercentile(q * 100) * scale : 0}`);
    }
    out.push(`${name}_sum${labels(base)} ${h.totalCount ? h.mean * h.totalCount * scale : 0}`);
    out.push(`${name}_count${labels(base)} ${h.totalCount}`);
  }
}

function counter(out: string[], name: string, help: string, rows: Array<[Record<string, string>, number]>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
  for (const [l, v] of rows) out.push(`${name}${labels(l)} ${v}`);
}

type Row = [Record<string, string>, number];

function gauge(out: string[], name: string, help: string, rows: Row[]): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
  for (const [l, v] of rows) out.push(`${name}${labels(l)} ${v}`);
}

/** Circuit breakers, fallbacks and prediction caches (only versions that have them). */
function resilience(out: string[], vms: VersionMetrics[]): void {
  const states: Row[] = [];
  const moves: Row[] = [];
  const served: Row[] = [];
  const lookups: Row[] = [];
  const evictions: Row[] = [];
  const entries: Row[] = [];
  const bytes: Row[] = [];
  for (const m of vms) {
    const r = m.resilience;
    const base = { model: m.model, version: m.version };
    const breakers = r.breakersByState();
    if (breakers) for (const state of BREAKER_STATES) states.push([{ ...base, state }, breakers[state]]);
    for (const [k, n] of r.transitions) {
      const [from, to] = k.split('>') as [string, string];
      moves.push([{ ...base, from, to }, n]);
    }
    for (const [k, n] of r.fallbacks) {
      const [policy, reason] = k.split('>') as [string, string];
      served.push([{ ...base, policy, reason }, n]);
    }
    if (r.cacheSize) {
      const size = r.cacheSize();
      lookups.push([{ ...base, result: 'hit' }, r.cacheHits], [{ ...base, result: 'miss' }, r.cacheMisses]);
      evictions.push([base, r.cacheEvictions]);
      entries.push([base, size.entries]);
      bytes.push([base, size.bytes]);
    }
  }
  gauge(out, 'sluice_circuit_breaker_state', 'Circuit breakers per model version in each state: each I/O thread has its own breaker, so this counts the threads whose breaker is in the state (one thread: 1 for the current state).', states);
  counter(out, 'sluice_circuit_breaker_transitions_total', 'Circuit breaker state changes per model version.', moves);
  counter(out, 'sluice_fallbacks_total', 'Answers served by a fallback, by the failing version, policy and reason (error, deadline, circuit_open).', served);
  counter(out, 'sluice_prediction_cache_requests_total', 'Prediction cache lookups by result (hit, miss).', lookups);
  counter(out, 'sluice_prediction_cache_evictions_total', 'Prediction cache entries evicted by the entry or byte bound.', evictions);
  gauge(out, 'sluice_prediction_cache_entries', 'Entries in the prediction caches, summed over the I/O threads (each has its own cache).', entries);
  gauge(out, 'sluice_prediction_cache_bytes', 'Bytes counted against max_bytes, summed over the I/O threads\' caches (0 without a byte bound; the bound applies per thread).', bytes);
}

/** The exposition lines of `metrics` (no extra lines, no process metrics). */
export function metricsLines(metrics: Metrics): string[] {
  const vms = metrics.all();
  const out: string[] = [];
  counter(out, 'sluice_inference_requests_total', 'Inference requests completed by the engine, by outcome.',
    vms.flatMap((m) => [
      [{ model: m.model, version: m.version, outcome: 'success' }, m.success] as [Record<string, string>, number],
      [{ model: m.model, version: m.version, outcome: 'failure' }, m.failure] as [Record<string, string>, number],
    ]));
  counter(out, 'sluice_executions_total', 'Model executions (batches), by model version.',
    vms.map((m) => [{ model: m.model, version: m.version }, m.executions]));
  counter(out, 'sluice_errors_total', 'Errors returned to clients, by error code.',
    [...metrics.errors].map(([code, n]) => [{ code }, n]));
  resilience(out, vms);
  summary(out, 'sluice_request_duration_seconds', 'Engine latency per request (HDR histogram, process lifetime).', vms, (m) => m.latency, 1e-6);
  summary(out, 'sluice_queue_duration_seconds', 'Time requests waited in the dynamic batcher.', vms, (m) => m.queue, 1e-6);
  summary(out, 'sluice_compute_duration_seconds', 'Time per model execution.', vms, (m) => m.compute, 1e-6);
  summary(out, 'sluice_batch_rows', 'Rows per model execution.', vms, (m) => m.batchRows, 1);
  summaryOf(out, 'sluice_routed_request_duration_seconds', 'Engine latency of the answers a route chose, by model, variant and the variant\'s version (HDR histogram, process lifetime).',
    metrics.allRouted().map((r) => [{ model: r.model, variant: r.variant, version: r.version }, r.latency]), 1e-6);
  return out;
}

export class PrometheusExporter {
  private readonly registry = new Registry();

  constructor(
    /** The figures to show: every I/O thread's metrics merged, and the extra lines front ends own (HTTP requests by route and status, admission). */
    private readonly source: () => Promise<{ metrics: Metrics; lines: string[] }>,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
  }

  /** The exposition: the source's metrics and extra lines, then this process's metrics. */
  async text(): Promise<string> {
    const { metrics, lines } = await this.source();
    const out = [...metricsLines(metrics), ...lines];
    return out.join('\n') + '\n' + (await this.registry.metrics());
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
