/**
 * Performance snapshots to the registry (issue #15): every `intervalMs` the main thread writes
 * one `model_performance` row per version this replica serves: requests answered in the
 * interval, p50/p95/p99 of their latency, the error rate, and the process's CPU (share of one
 * core over the interval, so above 100 with several busy threads) and resident memory.
 *
 * The interval's figures are differences of the lifetime metrics merged over every I/O thread
 * (engine.wholeMetrics(): integer counters, HDR histograms count by count), between this tick
 * and the last: exact for any interval, each request in exactly one row. The windows
 * (src/metrics/windows.ts) could not give that: their buckets are 10 s wide and aligned on the
 * clock, and the interval is not. A version's first row covers it from its first request.
 *
 * Only versions registered in the registry get a row (the table's foreign key): a version the
 * registry does not know (MODEL_NOT_FOUND / VERSION_NOT_FOUND) is skipped, quietly.
 */
import { Periodic } from './periodic.js';
import { addHistogramSnapshot, snapshotHistogram, type HistogramSnapshot } from '../metrics/histogram-snapshot.js';
import { latencyHistogram } from '../metrics/latency-histogram.js';
import type { Metrics } from '../metrics/version-metrics.js';
import type { PerformanceInput } from '../registry/types.js';

export interface PerformanceReporterOptions {
  intervalMs: number;
  /** The whole process's metrics (every I/O thread merged). */
  metrics: () => Promise<Metrics>;
  /** The versions served now. */
  served: () => Array<{ model: string; version: string }>;
  /** Writes one row (Registry.recordPerformance). */
  record: (model: string, version: string, row: PerformanceInput) => Promise<unknown>;
  /** Names this replica in each row's `extra`. */
  replica: string;
}

/** A version's lifetime figures when last written. */
export interface Mark {
  success: number;
  failure: number;
  latency: HistogramSnapshot;
}

const SKIPPED = new Set(['MODEL_NOT_FOUND', 'VERSION_NOT_FOUND']);

export class PerformanceReporter {
  private readonly periodic: Periodic;
  private readonly marks = new Map<string, Mark>();
  private cpu = process.cpuUsage();
  private cpuAt = performance.now();

  constructor(private readonly o: PerformanceReporterOptions) {
    this.periodic = new Periodic(o.intervalMs, () => this.tick(), 'performance: snapshot not written (next interval tries again)');
  }

  start(): void {
    this.periodic.start();
  }

  async close(): Promise<void> {
    await this.periodic.close();
  }

  /** Writes one row per served, registered version; returns the rows written. */
  async tick(): Promise<Array<{ model: string; version: string; row: PerformanceInput }>> {
    const metrics = await this.o.metrics();
    const process_ = this.processFigures();
    const written: Array<{ model: string; version: string; row: PerformanceInput }> = [];
    for (const { model, version } of this.o.served()) {
      const m = metrics.find(model, version);
      const now: Mark = m
        ? { success: m.success, failure: m.failure, latency: snapshotHistogram(m.latency) }
        : { success: 0, failure: 0, latency: snapshotHistogram(latencyHistogram()) };
      const key = `${model}\0${version}`;
      const last = this.marks.get(key);
      // Lifetime counts only grow; anything else means the metrics were replaced: start over.
      const before = last && now.success >= last.success && now.failure >= last.failure ? last : undefined;
      const requests = now.success + now.failure - (before ? before.success + before.failure : 0);
      const errors = now.failure - (before?.failure ?? 0);
      const row = { ...intervalFigures(now, before), ...process_, extra: { replica: this.o.replica, interval_ms: this.o.intervalMs, requests, errors } };
      this.marks.set(key, now);
      try {
        await this.o.record(model, version, row);
        written.push({ model, version, row });
      } catch (e) {
        if (!SKIPPED.has((e as { code?: string }).code ?? '')) throw e;
      }
    }
    return written;
  }

  /** CPU share since the last call (percent of one core) and resident memory now. */
  private processFigures(): { cpuPercent: number; memoryBytes: number } {
    const now = performance.now();
    const used = process.cpuUsage(this.cpu);
    const wallUs = Math.max(1, (now - this.cpuAt) * 1000);
    this.cpu = process.cpuUsage();
    this.cpuAt = now;
    return { cpuPercent: (100 * (used.user + used.system)) / wallUs, memoryBytes: process.memoryUsage().rss };
  }
}

/**
 * The requests between two marks of a version (`before` undefined: since it started):
 * answered (prediction_count), their latency percentiles in ms (absent when none), and failed /
 * all (absent when there were none).
 */
export function intervalFigures(now: Mark, before: Mark | undefined): Omit<PerformanceInput, 'cpuPercent' | 'memoryBytes' | 'extra'> {
  const success = now.success - (before?.success ?? 0);
  const failure = now.failure - (before?.failure ?? 0);
  const h = latencyHistogram();
  addHistogramSnapshot(h, now.latency);
  if (before && before.latency.counts.length > 0) {
    const b = latencyHistogram();
    addHistogramSnapshot(b, before.latency);
    h.subtract(b);
  }
  const out: Omit<PerformanceInput, 'cpuPercent' | 'memoryBytes' | 'extra'> = { predictionCount: success };
  if (success + failure > 0) out.errorRate = failure / (success + failure);
  if (h.totalCount > 0) {
    out.p50Ms = h.getValueAtPercentile(50) / 1000;
    out.p95Ms = h.getValueAtPercentile(95) / 1000;
    out.p99Ms = h.getValueAtPercentile(99) / 1000;
  }
  return out;
}
