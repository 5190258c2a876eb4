/**
 * Guardrail figures from serving (error rate, latency) per experiment variant. Each replica
 * writes its own since it first saw the experiment running, as one row per (experiment, replica,
 * variant) in `experiment_serving`, replaced at every report; the analysis sums the rows of every
 * replica. A replica's figures are the engine's whole-process metrics minus what they were when
 * it first saw the experiment (the baseline), so traffic before the experiment never counts.
 *
 * Requests and errors are the variant's VERSION's (requests that named the version explicitly
 * count too: the engine counts per version); latencies are the routed answers' (per variant).
 */
import type { Queryable } from '../../registry/db.js';
import { num } from '../../registry/rows.js';
import type { Metrics } from '../../metrics/version-metrics.js';
import { momentsOf, type Moments } from './figures.js';
import type { ExperimentRecord } from './store.js';

export interface ServingFigures {
  requests: number;
  errors: number;
  latencies: number;
  latencySumMs: number;
  latencySumsqMs: number;
}

const ZERO: ServingFigures = { requests: 0, errors: 0, latencies: 0, latencySumMs: 0, latencySumsqMs: 0 };

/** One variant's figures in this process's metrics now. */
function current(metrics: Metrics, model: string, variant: string, version: string): ServingFigures {
  const v = metrics.find(model, version);
  const h = metrics.findRouted(model, variant, version)?.latency;
  const n = h?.totalCount ?? 0;
  // HDR keeps microseconds; its mean and (population) standard deviation give the sums back.
  const meanMs = h && n > 0 ? h.mean / 1000 : 0;
  const sdMs = h && n > 0 ? h.stdDeviation / 1000 : 0;
  return { requests: v ? v.success + v.failure : 0, errors: v?.failure ?? 0, latencies: n, latencySumMs: meanMs * n, latencySumsqMs: (sdMs * sdMs + meanMs * meanMs) * n };
}

function minus(a: ServingFigures, b: ServingFigures): ServingFigures {
  return {
    requests: a.requests - b.requests, errors: a.errors - b.errors, latencies: a.latencies - b.latencies,
    latencySumMs: a.latencySumMs - b.latencySumMs, latencySumsqMs: a.latencySumsqMs - b.latencySumsqMs,
  };
}

/** This replica's reporter: baselines per experiment, kept while the experiment runs. */
export class ServingReporter {
  private readonly baselines = new Map<number, Map<string, ServingFigures>>();

  constructor(private readonly replica: string) {}

  /** Writes this replica's figures of every running experiment in `running`. */
  async report(db: Queryable, metrics: Metrics, running: ExperimentRecord[]): Promise<void> {
    const live = new Set(running.map((e) => e.id));
    for (const id of this.baselines.keys()) if (!live.has(id)) this.baselines.delete(id);
    const rows: Array<Record<string, unknown>> = [];
    for (const e of running) {
      let base = this.baselines.get(e.id);
      const first = !base;
      if (!base) this.baselines.set(e.id, (base = new Map()));
      for (const v of e.spec.variants) {
        const now = current(metrics, e.spec.model, v.name, v.version);
        if (first) base.set(v.name, now);
        const d = minus(now, base.get(v.name) ?? ZERO);
        rows.push({ e: e.id, v: v.name, r: d.requests, x: d.errors, n: d.latencies, s: d.latencySumMs, q: d.latencySumsqMs });
      }
    }
    if (rows.length === 0) return;
    await db.query(
      `INSERT INTO experiment_serving (experiment_id, replica, variant, requests, errors, latencies, latency_sum_ms, latency_sumsq_ms)
       SELECT e, $2, v, r, x, n, s, q FROM jsonb_to_recordset($1::text::jsonb) AS t(e bigint, v text, r bigint, x bigint, n bigint, s float8, q float8)
       ON CONFLICT (experiment_id, replica, variant) DO UPDATE SET requests = EXCLUDED.requests, errors = EXCLUDED.errors,
         latencies = EXCLUDED.latencies, latency_sum_ms = EXCLUDED.latency_sum_ms, latency_sumsq_ms = EXCLUDED.latency_sumsq_ms,
         updated_at = clock_timestamp()`,
      [JSON.stringify(rows), this.replica],
    );
  }
}

export interface VariantServing {
  /** Error rate: requests and failed ones. */
  requests: number;
  errors: number;
  /** Latency in ms over the routed answers. */
  latency: Moments;
}

/** Every replica's figures summed, by variant. */
export async function servingFigures(db: Queryable, id: number): Promise<Map<string, VariantServing>> {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT variant, sum(requests) AS requests, sum(errors) AS errors, sum(latencies) AS latencies,
            sum(latency_sum_ms) AS s, sum(latency_sumsq_ms) AS q
       FROM experiment_serving WHERE experiment_id = $1 GROUP BY variant`, [id],
  );
  const out = new Map<string, VariantServing>();
  for (const r of rows) {
    const latency = momentsOf(num(r.latencies), Number(r.s), Number(r.q));
    out.set(r.variant as string, { requests: num(r.requests), errors: Math.min(num(r.errors), num(r.requests)), latency });
  }
  return out;
}
