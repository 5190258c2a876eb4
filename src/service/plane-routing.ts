/**
 * The routing step of one I/O thread's data plane: which variant the route in force picks for an
 * unversioned request, what a routed answer records (its variant's latency and count, its
 * decision for the log, its shadows), and this thread's routes as the control plane installs
 * and replaces them. The data plane (data-plane.ts) calls it on the request path; nothing here
 * runs for a model without a route beyond one read of its route generation.
 */
import { SluiceError } from '../errors.js';
import type { Tensor } from '../model/tensor.js';
import type { Metrics } from '../metrics/version-metrics.js';
import type { TableView } from '../dispatch/model-table.js';
import { NO_GENERATION } from '../dispatch/model-table.js';
import type { DecisionChunk } from '../learn/decision-chunk.js';
import { PlaneRoute, type PublishedRoute } from '../routing/plane-route.js';
import type { ShadowSnapshot } from '../routing/shadow.js';
import type { BatchTensor } from '../worker/runtimes/index.js';
import { DecisionRecorder, type RoutePick } from './decision-recorder.js';
import type { LoadedVersion, ModelEntry } from './plane-versions.js';
import { ShadowMirror } from './shadow-mirror.js';
import type { InferRequest, InferResponse } from './types.js';

/** A request the route in force sent to one of its variants, and that variant's version. */
export interface Routed extends RoutePick {
  v: LoadedVersion;
}

/** Routed answers and failures of one variant (for /metrics). */
interface VariantTotal {
  model: string;
  variant: string;
  version: string;
  n: number;
  failed: number;
}

export interface RoutingHost {
  /** The thread's models (the data plane's own map: read, never changed, here). */
  models: ReadonlyMap<string, ModelEntry>;
  table: TableView;
  metrics: Metrics;
  /** Whether admission takes all work now (shadow copies are dropped first of all otherwise). */
  accepting(): boolean;
  closing(): boolean;
  /** Runs checked inputs on `v` without a deadline (the data plane's run). */
  run(v: LoadedVersion, ordered: Tensor[], rows: number): { outs: BatchTensor[] } | Promise<BatchTensor[]>;
  /** Where decisions go (the control plane's decision log); absent: answers carry them, none is logged. */
  onDecisions?: (chunk: DecisionChunk) => void;
}

export class PlaneRouting {
  private readonly decisions: DecisionRecorder;
  private readonly shadows: ShadowMirror<LoadedVersion>;
  /** Routed answers of routes no longer in force, by model, variant and version (for /metrics). */
  private readonly variantTotals = new Map<string, VariantTotal>();

  constructor(private readonly host: RoutingHost) {
    this.decisions = new DecisionRecorder(host.onDecisions);
    this.shadows = new ShadowMirror<LoadedVersion>({
      version: (model, version) => host.models.get(model)?.versions.get(version),
      accepting: () => host.accepting(),
      closing: () => host.closing(),
      run: (v, ordered, rows) => host.run(v, ordered, rows),
    });
  }

  /**
   * The route in force for an unversioned request (one read of the model's route generation),
   * and the variant it picks; undefined without a route (the default version answers).
   */
  pick(req: InferRequest): Routed | undefined {
    const m = this.host.models.get(req.model);
    if (!m || !m.announced) return undefined;
    const gen = this.host.table.routeGeneration(m.slot);
    if (gen === NO_GENERATION) return undefined;
    const route = m.routes.get(gen);
    if (route === undefined) return undefined;
    const { index, propensity } = route.assigner.pick(req.unitId);
    const variant = route.spec.variants[index]!;
    const v = m.versions.get(variant.version);
    // The control plane loads every version a route names before it puts the route in force.
    if (!v || v.retired) throw new SluiceError('MODEL_NOT_READY', `model ${req.model}: version ${variant.version} of variant ${variant.name} is not loaded`);
    return { route, v, variant: variant.name, index, propensity };
  }

  /**
   * A routed answer: its latency (the version's own, from the same clock readings where there
   * are any) goes to its variant's histogram on this thread; it carries its decision, and the
   * decision goes to the log (a learned version's rows are the decisions, logged already).
   */
  answered(res: InferResponse, r: Routed, req: InferRequest, rows: number, t0: number, end: number): InferResponse {
    r.route.latency[r.index]!.observe(end - t0);
    if (r.route.spec.shadows.length > 0) this.shadows.mirror(r.route, req, res, rows, performance.now() - t0);
    r.route.answered[r.index]!++;
    if (res.decision === undefined) this.decisions.routed(res, r, req.model, req.unitId);
    return res;
  }

  /** A routed request that failed (bad inputs, model error, deadline): counted against its variant. */
  failed(r: Routed): void {
    r.route.failed[r.index]!++;
  }

  /** The answer of a version whose state is learned online: it says which state computed it, and logs its decisions. */
  learnedAnswer(res: InferResponse, v: LoadedVersion, req: InferRequest, ordered: Tensor[], outs: BatchTensor[], rows: number, r: Routed | undefined): void {
    const info = v.runtime!.learned!;
    res.state = info.lastState;
    v.learned ??= { version: v.manifest.version, decides: info.decides };
    this.decisions.learned(res, v.learned, req.model, req.unitId, ordered[0]!.data as Float32Array, outs, rows, r);
  }

  /** Builds this thread's copy of a route; no request reads it until the table names its generation. */
  install(m: ModelEntry, route: PublishedRoute): void {
    m.routes.set(route.gen, new PlaneRoute(route, (v) => this.host.metrics.routedOf(m.name, v.name, v.version)));
  }

  /** After the control plane stored route generation `gen` (or none): older routes are dropped. */
  stored(m: ModelEntry, gen: number): void {
    for (const [g, r] of m.routes) {
      if (g === gen) continue;
      addVariantCounts(this.variantTotals, m.name, r);
      m.routes.delete(g);
    }
  }

  /** A model unloaded from this thread: its routes' counts stay in /metrics. */
  unloaded(m: ModelEntry): void {
    for (const r of m.routes.values()) addVariantCounts(this.variantTotals, m.name, r);
  }

  /** This thread's shadow figures for a model (the control plane merges every thread's). */
  shadowSnapshots(model: string): ShadowSnapshot[] {
    return this.shadows.snapshots(model);
  }

  /** Hands the buffered decisions to the log now, without waiting for the flush timer. */
  flush(): void {
    this.decisions.flush();
  }

  /** Routed answers and errors by model, variant and version, and shadow figures, for /metrics. */
  metricLines(): string[] {
    // The folded totals of old routes plus the routes installed now (summed over threads by the
    // merge, like every counter).
    const variants = new Map<string, VariantTotal>();
    for (const [k, t] of this.variantTotals) variants.set(k, { ...t });
    for (const [model, m] of this.host.models) for (const r of m.routes.values()) addVariantCounts(variants, model, r);
    const label = (t: VariantTotal) => `{model=${JSON.stringify(t.model)},variant=${JSON.stringify(t.variant)},version=${JSON.stringify(t.version)}}`;
    return [
      '# HELP sluice_routed_answers_total Answers a route chose, by model, variant and the version that computed them.',
      '# TYPE sluice_routed_answers_total counter',
      ...[...variants.values()].map((t) => `sluice_routed_answers_total${label(t)} ${t.n}`),
      '# HELP sluice_routed_errors_total Requests a route sent to a variant that failed, by model, variant and the variant\'s version.',
      '# TYPE sluice_routed_errors_total counter',
      ...[...variants.values()].map((t) => `sluice_routed_errors_total${label(t)} ${t.failed}`),
      ...this.shadows.metricLines(),
    ];
  }
}

/** Adds a route's answered and failed counts, by model, variant and version, into `into`. */
function addVariantCounts(into: Map<string, VariantTotal>, model: string, r: PlaneRoute): void {
  r.spec.variants.forEach((v, i) => {
    const key = `${model}\0${v.name}\0${v.version}`;
    const t = into.get(key) ?? { model, variant: v.name, version: v.version, n: 0, failed: 0 };
    t.n += r.answered[i]!;
    t.failed += r.failed[i]!;
    into.set(key, t);
  });
}

/**
 * A request's first input as float32 for its decision: its own data (float32 already, and
 * `copy` false: recorded before the request's buffers can be reused) or a copy.
 */
export function featuresOf(ordered: Tensor[], copy: boolean): Float32Array | undefined {
  const t = ordered[0];
  if (!t) return undefined;
  if (t.data instanceof Float32Array) return copy ? t.data.slice() : t.data;
  const d = t.data as ArrayLike<number | bigint>;
  const out = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = Number(d[i]);
  return out;
}
