/**
 * One entry point for an experiment's analysis: per metric, each treatment against the control,
 * the fixed-horizon test (Welch for means, two-proportion for rates) beside the always-valid
 * sequential result, with Holm-adjusted p-values.
 *
 * Holm families (each controls its own family-wise error rate at alpha):
 * - primary: the treatments on the primary metric. It decides the experiment, so adding secondary
 *   metrics must not cost it power (and with one treatment it is not adjusted at all);
 * - secondary: every (treatment, secondary metric) pair together, as the issue asks;
 * - guardrail: every (treatment, guardrail) pair together. decide() judges harm on the unadjusted
 *   sequential p-value instead: for safety a missed harm costs more than a false alarm.
 * Both the fixed-horizon p and the sequential p are adjusted (p_holm, seq_p_holm): Holm needs only
 * valid marginal p-values, which the always-valid p is at any stopping time.
 *
 * Everything undefined is null (n < 2, no variance, zero control mean for the lift): results go
 * to JSON and the dashboard unchanged.
 */
import { SluiceError } from '../errors.js';
import { cupedAdjust, type CovariateSummary } from './cuped.js';
import { holm } from './holm.js';
import { twoProportions } from './proportions.js';
import { DEFAULT_SEQUENTIAL_TUNING, sequentialTest, type SequentialState } from './sequential.js';
import { DEFAULT_SRM_THRESHOLD } from './srm.js';
import { rateAsSummary, type Interval, type RateSummary, type Summary } from './summary.js';
import { welch } from './welch.js';

export type MetricRole = 'primary' | 'secondary' | 'guardrail';
/** Which way is better: 'increase' (rewards, conversion) or 'decrease' (error rate, latency). */
export type Direction = 'increase' | 'decrease';

export type MetricData =
  | {
      kind: 'mean';
      control: Summary;
      treatments: Summary[];
      /** Pre-period covariate per variant (same order) for CUPED; null for a variant without any. */
      covariates?: { control: CovariateSummary | null; treatments: (CovariateSummary | null)[] };
    }
  | { kind: 'rate'; control: RateSummary; treatments: RateSummary[] };

export interface MetricInput {
  name: string;
  role: MetricRole;
  direction?: Direction;
  data: MetricData;
  /** The sequential state the previous look returned, per treatment (persisted by the caller). */
  previous?: (SequentialState | null)[];
}

export interface AnalysisOptions {
  alpha?: number;
  /** Total units where the confidence sequence is tightest (sequential.ts). */
  sequentialTuning?: number;
}

export interface TreatmentResult {
  n_control: number;
  n_treatment: number;
  /** Means (rates for 'rate'); CUPED-adjusted when a covariate was given. */
  control_mean: number | null;
  treatment_mean: number | null;
  diff: number | null;
  se: number | null;
  ci: Interval | null;
  lift: number | null;
  lift_ci: Interval | null;
  p: number | null;
  p_holm: number | null;
  /** t for 'mean', z for 'rate'. */
  statistic: number | null;
  /** Welch-Satterthwaite df; null for 'rate' (normal). */
  df: number | null;
  cohen_d: number | null;
  seq_p: number | null;
  seq_p_holm: number | null;
  seq_ci: Interval | null;
}

export interface MetricResult {
  name: string;
  role: MetricRole;
  direction: Direction;
  kind: 'mean' | 'rate';
  /** CUPED's theta when a covariate was used, else null. */
  cuped_theta: number | null;
  treatments: TreatmentResult[];
}

export interface ExperimentResult {
  alpha: number;
  metrics: MetricResult[];
}

/** User-supplied analysis settings (experiment create): a SluiceError names the bad field. */
export function validateAnalysisOptions(o: { alpha?: number; sequentialTuning?: number; srmThreshold?: number; minimumEffect?: number }): void {
  const bad = (field: string, rule: string, value: unknown): never => {
    throw new SluiceError('INVALID_ARGUMENT', `${field} must be ${rule}, got ${JSON.stringify(value)}`);
  };
  if (o.alpha !== undefined && !(o.alpha > 0 && o.alpha < 0.5)) bad('alpha', 'a number in (0, 0.5)', o.alpha);
  if (o.sequentialTuning !== undefined && !(o.sequentialTuning > 0 && Number.isFinite(o.sequentialTuning))) bad('sequential_tuning', 'a positive number', o.sequentialTuning);
  if (o.srmThreshold !== undefined && !(o.srmThreshold > 0 && o.srmThreshold < 1)) bad('srm_threshold', 'a number in (0, 1)', o.srmThreshold);
  if (o.minimumEffect !== undefined && !(o.minimumEffect > 0 && Number.isFinite(o.minimumEffect))) bad('minimum_effect', 'a positive number', o.minimumEffect);
}

export const ANALYSIS_DEFAULTS = { alpha: 0.05, sequentialTuning: DEFAULT_SEQUENTIAL_TUNING, srmThreshold: DEFAULT_SRM_THRESHOLD } as const;

/** One metric, every treatment against the control; p_holm / seq_p_holm adjust across its treatments only. */
export function analyzeMetric(metric: MetricInput, options: AnalysisOptions = {}): MetricResult {
  const alpha = options.alpha ?? ANALYSIS_DEFAULTS.alpha;
  const tuning = options.sequentialTuning ?? ANALYSIS_DEFAULTS.sequentialTuning;
  const { data } = metric;
  if (metric.previous && metric.previous.length !== data.treatments.length) {
    throw new Error(`${metric.name}: ${metric.previous.length} previous states for ${data.treatments.length} treatments`);
  }
  let cupedTheta: number | null = null;
  let treatments: TreatmentResult[];
  if (data.kind === 'mean') {
    let control = data.control;
    let arms = data.treatments;
    if (data.covariates) {
      if (data.covariates.treatments.length !== arms.length) throw new Error(`${metric.name}: covariates for ${data.covariates.treatments.length} of ${arms.length} treatments`);
      const cuped = cupedAdjust([
        { metric: control, covariate: data.covariates.control },
        ...arms.map((m, i) => ({ metric: m, covariate: data.covariates!.treatments[i]! })),
      ]);
      cupedTheta = cuped.theta;
      [control, ...arms] = cuped.adjusted as [Summary, ...Summary[]];
    }
    treatments = arms.map((arm, i) => {
      const w = welch(control, arm, alpha);
      const seq = sequentialTest(control, arm, { alpha, tuning, previous: metric.previous?.[i] ?? null });
      return {
        n_control: control.n, n_treatment: arm.n,
        control_mean: control.n > 0 ? control.mean : null, treatment_mean: arm.n > 0 ? arm.mean : null,
        diff: w.diff, se: w.se, ci: w.ci, lift: w.lift, lift_ci: w.lift_ci,
        p: w.p, p_holm: null, statistic: w.t, df: w.df, cohen_d: w.cohen_d,
        seq_p: seq.p, seq_p_holm: null, seq_ci: seq.ci,
      };
    });
  } else {
    const control = data.control;
    treatments = data.treatments.map((arm, i) => {
      const z = twoProportions(control, arm, alpha);
      // The confidence sequence is asymptotic and holds for 0/1 values as for any finite variance.
      const seq = sequentialTest(rateAsSummary(control), rateAsSummary(arm), { alpha, tuning, previous: metric.previous?.[i] ?? null });
      return {
        n_control: control.n, n_treatment: arm.n,
        control_mean: control.n > 0 ? control.successes / control.n : null, treatment_mean: arm.n > 0 ? arm.successes / arm.n : null,
        diff: z.diff, se: z.se, ci: z.ci, lift: z.lift, lift_ci: z.lift_ci,
        p: z.p, p_holm: null, statistic: z.z, df: null, cohen_d: z.cohen_d,
        seq_p: seq.p, seq_p_holm: null, seq_ci: seq.ci,
      };
    });
  }
  const result: MetricResult = { name: metric.name, role: metric.role, direction: metric.direction ?? 'increase', kind: data.kind, cuped_theta: cupedTheta, treatments };
  adjustFamily([result]);
  return result;
}

/** Every metric, with Holm applied per family (primary / secondary / guardrail; see the file comment). */
export function analyzeExperiment(metrics: readonly MetricInput[], options: AnalysisOptions = {}): ExperimentResult {
  const results = metrics.map((m) => analyzeMetric(m, options));
  for (const role of ['primary', 'secondary', 'guardrail'] as const) adjustFamily(results.filter((r) => r.role === role));
  return { alpha: options.alpha ?? ANALYSIS_DEFAULTS.alpha, metrics: results };
}

/** What to persist after a look and pass back as MetricInput.previous at the next one. */
export function sequentialStates(result: MetricResult): SequentialState[] {
  return result.treatments.map((t) => ({ p: t.seq_p, ci: t.seq_ci }));
}

function adjustFamily(family: readonly MetricResult[]): void {
  const cells = family.flatMap((m) => m.treatments);
  const p = holm(cells.map((c) => c.p));
  const seq = holm(cells.map((c) => c.seq_p));
  cells.forEach((c, i) => {
    c.p_holm = p[i]!;
    c.seq_p_holm = seq[i]!;
  });
}
