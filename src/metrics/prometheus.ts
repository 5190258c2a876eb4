/**
 * Prometheus text exposition of Sluice's metrics. Latency summaries come straight from the HDR
 * histograms (exact p50/p90/p99/p99.9 over the process lifetime, which prom-client's sliding
 * summaries cannot give); process metrics come from prom-client's default collectors.
 */
import { collectDefaultMetrics, Registry } from 'prom-client';
import type * as hdr from 'hdr-histogram-js';
import type { Metrics, VersionMetrics } from './version-metrics.js';

const QUANTILES = [0.5, 0.9, 0.99, 0.999];

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(pairs: Record<string, string>): string {
  return '{' + Object.entries(pairs).map(([k, v]) => `${k}="${esc(v)}"`).join(',') + '}';
}

type Histo = (m: VersionMetrics) => hdr.Histogram;

function summary(out: string[], name: string, help: string, vms: VersionMetrics[], pick: Histo, scale: number): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} summary`);
  for (const m of vms) {
    const h = pick(m);
    const base = { model: m.model, version: m.version };
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

export class PrometheusExporter {
  private readonly registry = new Registry();

  constructor(
    private readonly metrics: Metrics,
    /** Extra counters owned by a front end (e.g. HTTP requests by route and status). */
    private readonly extra: () => string[] = () => [],
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'sluice_' });
  }

  async text(): Promise<string> {
    const vms = this.metrics.all();
    const out: string[] = [];
    counter(out, 'sluice_inference_requests_total', 'Inference requests completed by the engine, by outcome.',
      vms.flatMap((m) => [
        [{ model: m.model, version: m.version, outcome: 'success' }, m.success] as [Record<string, string>, number],
        [{ model: m.model, version: m.version, outcome: 'failure' }, m.failure] as [Record<string, string>, number],
      ]));
    counter(out, 'sluice_executions_total', 'Model executions (batches), by model version.',
      vms.map((m) => [{ model: m.model, version: m.version }, m.executions]));
    counter(out, 'sluice_errors_total', 'Errors returned to clients, by error code.',
      [...this.metrics.errors].map(([code, n]) => [{ code }, n]));
    summary(out, 'sluice_request_duration_seconds', 'Engine latency per request (HDR histogram, process lifetime).', vms, (m) => m.latency, 1e-6);
    summary(out, 'sluice_queue_duration_seconds', 'Time requests waited in the dynamic batcher.', vms, (m) => m.queue, 1e-6);
    summary(out, 'sluice_compute_duration_seconds', 'Time per model execution.', vms, (m) => m.compute, 1e-6);
    summary(out, 'sluice_batch_rows', 'Rows per model execution.', vms, (m) => m.batchRows, 1);
    out.push(...this.extra());
    return out.join('\n') + '\n' + (await this.registry.metrics());
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
