/**
 * One look at an experiment: its figures from the database (figures.ts, serving.ts), the
 * statistics of src/analyze per metric (fixed-horizon beside always-valid, Holm, CUPED when
 * covariates were supplied), the sample-ratio check over its weight periods, and the stopping
 * decision. Pure reading: the analysis loop (loop.ts) persists the sequential state it returns
 * and acts on the decision; `results` on any replica shows a look without changing anything.
 *
 * Variants are analysed control first (decide and the Holm families expect that order),
 * whatever the control's place in the spec.
 */
import { analyzeExperiment, sequentialStates, type MetricInput, type MetricResult } from '../../analyze/analyze.js';
import { decide, type Decision } from '../../analyze/decide.js';
import type { SequentialState } from '../../analyze/sequential.js';
import { DEFAULT_SEQUENTIAL_TUNING } from '../../analyze/sequential.js';
import { sampleRatioMismatch, type SrmResult } from '../../analyze/srm.js';
import type { Summary } from '../../analyze/summary.js';
import type { Queryable } from '../../registry/db.js';
import { experimentFigures, type KindFigures, type VariantFigures } from './figures.js';
import { servingFigures, type VariantServing } from './serving.js';
import type { Metric } from './spec.js';
import { periods as weightPeriods, type ExperimentRecord, type Period } from './store.js';

/** Sequential state per metric name, per treatment (control-first order, control left out). */
export type LookState = Record<string, (SequentialState | null)[]>;

export interface Look {
  /** The API's results JSON. */
  results: Record<string, unknown>;
  state: LookState;
  decision: Decision;
}

const NO_UNITS: VariantFigures = {
  variant: '', units: 0, withFeedback: 0, crossed: 0,
  mean: { n: 0, mean: 0, variance: 0 }, sum: { n: 0, mean: 0, variance: 0 }, rate: { n: 0, mean: 0, variance: 0, successes: 0 },
};
const NO_SERVING: VariantServing = { requests: 0, errors: 0, latency: { n: 0, mean: 0, variance: 0 } };

function summary(k: KindFigures): Summary {
  return { n: k.n, mean: k.mean, variance: k.variance };
}

/** The metric's data over the variants (control first). */
function metricData(m: Metric, figs: VariantFigures[], serving: VariantServing[]): MetricInput['data'] {
  const split = <T>(xs: T[]) => ({ control: xs[0]!, treatments: xs.slice(1) });
  switch (m.kind) {
    case 'rate':
      return { kind: 'rate', ...split(figs.map((f) => ({ n: f.units, successes: f.rate.successes }))) };
    case 'error_rate':
      return { kind: 'rate', ...split(serving.map((s) => ({ n: s.requests, successes: s.errors }))) };
    case 'latency':
      return { kind: 'mean', ...split(serving.map((s) => s.latency)) };
    case 'mean':
    case 'sum': {
      const kind = m.kind;
      const kinds = figs.map((f) => f[kind]);
      const withCovariates = kinds.some((k) => k.cuped);
      const covariates = kinds.map((k) => (k.cuped ? { n: k.cuped.n, mean: k.cuped.covariateMean, variance: k.cuped.covariateVariance, covariance: k.cuped.covariance } : null));
      return {
        kind: 'mean',
        ...split(kinds.map(summary)),
        ...(withCovariates ? { covariates: split(covariates) } : {}),
      };
    }
  }
}

function srmOf(e: ExperimentRecord, order: number[], figs: VariantFigures[], periods: Period[], unitsByGen: Map<number, number>): SrmResult | null {
  // A bandit moves its allocation by design: there is no intended ratio to check.
  if (e.spec.route.assignment === 'bandit' || periods.length === 0) return null;
  const observed = figs.map((f) => f.units);
  if (observed.every((n) => n === 0)) return null;
  return sampleRatioMismatch(observed, periods.map((p) => ({ weights: order.map((i) => p.weights[i]!), units: unitsByGen.get(p.routeGen) ?? 0 })));
}

function round(x: number | null, digits = 6): number | null {
  return x === null ? null : Number(x.toPrecision(digits + 4));
}

/** Looks at `e` now; `now` is the decision's clock (run time). */
export async function look(db: Queryable, e: ExperimentRecord, now = Date.now()): Promise<Look> {
  const spec = e.spec;
  const order = [spec.control, ...spec.variants.map((_, i) => i).filter((i) => i !== spec.control)];
  const names = order.map((i) => spec.variants[i]!.name);
  const hasCovariates = (await db.query('SELECT 1 FROM experiment_units WHERE experiment_id = $1 AND covariate IS NOT NULL LIMIT 1', [e.id])).length > 0;
  const { variants: raw, periods: unitPeriods } = await experimentFigures(db, e.id, hasCovariates);
  const byName = new Map(raw.map((f) => [f.variant, f]));
  const figs = names.map((n) => byName.get(n) ?? { ...NO_UNITS, variant: n });
  const needsServing = spec.guardrails.length > 0;
  const servingBy = needsServing ? await servingFigures(db, e.id) : new Map<string, VariantServing>();
  const serving = names.map((n) => servingBy.get(n) ?? NO_SERVING);
  const periods = await weightPeriods(db, e.id);
  const unitsByGen = new Map<number, number>();
  for (const p of unitPeriods) unitsByGen.set(p.routeGen, (unitsByGen.get(p.routeGen) ?? 0) + p.units);
  const srm = srmOf(e, order, figs, periods, unitsByGen);

  const previous = e.state as LookState;
  const roles: Array<[Metric, MetricInput['role']]> = [
    [spec.primary, 'primary'], ...spec.secondary.map((m): [Metric, MetricInput['role']] => [m, 'secondary']), ...spec.guardrails.map((m): [Metric, MetricInput['role']] => [m, 'guardrail']),
  ];
  const inputs: MetricInput[] = roles.map(([m, role]) => ({
    name: m.name, role, direction: m.direction, data: metricData(m, figs, serving),
    ...(previous[m.name]?.length === names.length - 1 ? { previous: previous[m.name] } : {}),
  }));
  const tuning = spec.maxUnits !== null ? spec.maxUnits * names.length : DEFAULT_SEQUENTIAL_TUNING;
  const analysis = analyzeExperiment(inputs, { alpha: spec.alpha, sequentialTuning: tuning });
  const state: LookState = {};
  for (const r of analysis.metrics) state[r.name] = sequentialStates(r);
  const primary = analysis.metrics[0]!;
  const elapsedMs = (e.stoppedAt?.getTime() ?? now) - e.startedAt.getTime();
  const decision = decide({
    variants: names,
    primary,
    guardrails: analysis.metrics.filter((r) => r.role === 'guardrail'),
    unitsPerVariant: figs.map((f) => f.units),
    minUnitsPerVariant: spec.minUnits,
    elapsedMs,
    minRuntimeMs: spec.minRuntimeS * 1000,
    srmMismatch: srm?.mismatch ?? false,
    alpha: spec.alpha,
    minimumEffect: spec.mde,
    maxUnitsPerVariant: spec.maxUnits,
  });
  const weights = periods.length > 0 ? periods[periods.length - 1]!.weights : spec.variants.map((v) => v.weight);
  const results = {
    experiment: spec.name,
    model: spec.model,
    status: e.status,
    started_at: e.startedAt.toISOString(),
    stopped_at: e.stoppedAt?.toISOString() ?? null,
    elapsed_s: Math.floor(elapsedMs / 1000),
    alpha: spec.alpha,
    assignment: spec.route.assignment,
    variants: order.map((i, k) => ({
      name: names[k], version: spec.variants[i]!.version, control: k === 0, weight: weights[i] ?? null,
      units: figs[k]!.units, with_feedback: figs[k]!.withFeedback, crossed: figs[k]!.crossed,
    })),
    srm: srm ? { observed: figs.map((f) => f.units), expected: srm.expected.map((x) => round(x)), chi2: round(srm.chi2), df: srm.df, p: srm.p, mismatch: srm.mismatch } : null,
    periods: periods.map((p) => ({ route_generation: p.routeGen, weights: order.map((i) => p.weights[i]), started_at: p.startedAt.toISOString(), units: unitsByGen.get(p.routeGen) ?? 0 })),
    metrics: analysis.metrics.map((r) => metricJson(r, names, figs, serving, roles.find(([m]) => m.name === r.name)![0])),
    decision,
    outcome: e.outcome,
    promoted_version: e.promotedVersion,
  };
  return { results, state, decision };
}

/** One metric's results: the variants' figures, then each treatment against the control. */
function metricJson(r: MetricResult, names: string[], figs: VariantFigures[], serving: VariantServing[], m: Metric): Record<string, unknown> {
  const variantFigure = (k: number) => {
    switch (m.kind) {
      case 'rate': return { n: figs[k]!.units, mean: figs[k]!.units > 0 ? figs[k]!.rate.successes / figs[k]!.units : null };
      case 'error_rate': return { n: serving[k]!.requests, mean: serving[k]!.requests > 0 ? serving[k]!.errors / serving[k]!.requests : null };
      case 'latency': return { n: serving[k]!.latency.n, mean: serving[k]!.latency.n > 0 ? serving[k]!.latency.mean : null };
      case 'mean':
      case 'sum': {
        const f = figs[k]![m.kind];
        return { n: f.n, mean: f.n > 0 ? f.mean : null, sd: f.n > 1 ? Math.sqrt(f.variance) : null };
      }
    }
  };
  return {
    name: r.name, role: r.role, kind: m.kind, direction: r.direction, test: r.kind === 'rate' ? 'two-proportion z' : 'welch t',
    cuped_theta: r.cuped_theta,
    variants: names.map((n, k) => ({ name: n, ...variantFigure(k) })),
    treatments: r.treatments.map((t, i) => ({ variant: names[i + 1], ...t })),
  };
}
