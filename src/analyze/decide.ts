/**
 * When an experiment stops, from one look's analysis. Pure: the controller persists and acts.
 *
 * Rules, in this order (the first that applies wins):
 * 1. continue while a sample-ratio mismatch stands: assignment or logging is broken, so no
 *    estimate can be trusted, in either direction;
 * 2. continue until every variant has minUnitsPerVariant units and minRuntimeMs has elapsed (day of
 *    week and novelty effects need the run time even when the sequence could already decide);
 * 3. harm: a treatment significantly worse on the primary metric or on any guardrail, judged on the
 *    always-valid p-value without Holm (a missed harm costs more than a false alarm). Harm comes
 *    before winner: users are being hurt now, and a treatment that wins on the primary while
 *    breaking a guardrail is no winner. The variant is the harmful treatment (smallest p);
 * 4. winner: treatments better on the primary with the Holm-adjusted always-valid p-value below
 *    alpha; with several, the largest improvement. There is no "control wins" action: every
 *    treatment significantly worse is harm (3);
 * 5. futility: no treatment can still be better than the control by the minimum effect of
 *    interest: every treatment's always-valid interval lies below +minimumEffect (above
 *    -minimumEffect for a 'decrease' metric). The interval holds at every look, so this is a valid
 *    conclusion whenever it is reached. Or: every variant reached maxUnitsPerVariant without a
 *    winner (the planned horizon is spent);
 * 6. otherwise continue.
 */
import type { Direction, MetricResult, TreatmentResult } from './analyze.js';

export type DecisionAction = 'continue' | 'winner' | 'futility' | 'harm';

export interface Decision {
  action: DecisionAction;
  /** The winning or harmful treatment's name (winner, harm). */
  variant?: string;
  reason: string;
}

export interface MinimumEffect {
  /** 'absolute': in the metric's units; 'relative': a fraction of the control mean (0.02 = 2%). */
  kind: 'absolute' | 'relative';
  value: number;
}

export interface DecisionInput {
  /** Variant names, control first, treatments in the order of the results. */
  variants: readonly string[];
  primary: MetricResult;
  guardrails?: readonly MetricResult[];
  /** Units per variant (control first), e.g. from the SRM check's observed counts. */
  unitsPerVariant: readonly number[];
  minUnitsPerVariant: number;
  elapsedMs: number;
  minRuntimeMs: number;
  srmMismatch: boolean;
  alpha: number;
  minimumEffect?: MinimumEffect | null;
  maxUnitsPerVariant?: number | null;
}

export function decide(input: DecisionInput): Decision {
  const treatmentNames = input.variants.slice(1);
  if (treatmentNames.length !== input.primary.treatments.length) {
    throw new Error(`decide: ${treatmentNames.length} treatment names for ${input.primary.treatments.length} results`);
  }
  if (input.unitsPerVariant.length !== input.variants.length) throw new Error('decide: unitsPerVariant does not match variants');
  if (input.srmMismatch) return { action: 'continue', reason: 'sample ratio mismatch: no decision while assignment or logging is suspect' };
  const fewest = Math.min(...input.unitsPerVariant);
  if (fewest < input.minUnitsPerVariant) {
    return { action: 'continue', reason: `minimum sample not reached: ${fewest} of ${input.minUnitsPerVariant} units in the smallest variant` };
  }
  if (input.elapsedMs < input.minRuntimeMs) {
    return { action: 'continue', reason: `minimum run time not reached: ${Math.floor(input.elapsedMs / 1000)} of ${Math.ceil(input.minRuntimeMs / 1000)} s` };
  }

  let harm: { i: number; p: number; metric: string } | null = null;
  for (const metric of [input.primary, ...(input.guardrails ?? [])]) {
    metric.treatments.forEach((t, i) => {
      if (t.seq_p !== null && t.seq_p < input.alpha && better(t, metric.direction) === false && (harm === null || t.seq_p < harm.p)) {
        harm = { i, p: t.seq_p, metric: metric.name };
      }
    });
  }
  if (harm !== null) {
    const h = harm as { i: number; p: number; metric: string };
    return { action: 'harm', variant: treatmentNames[h.i]!, reason: `significantly worse on ${h.metric} (sequential p ${h.p.toPrecision(3)} < ${input.alpha})` };
  }

  let winner: { i: number; gain: number; p: number } | null = null;
  input.primary.treatments.forEach((t, i) => {
    if (t.seq_p_holm === null || t.seq_p_holm >= input.alpha || better(t, input.primary.direction) !== true) return;
    const gain = input.primary.direction === 'increase' ? t.diff! : -t.diff!;
    if (winner === null || gain > winner.gain) winner = { i, gain, p: t.seq_p_holm };
  });
  if (winner !== null) {
    const w = winner as { i: number; gain: number; p: number };
    return { action: 'winner', variant: treatmentNames[w.i]!, reason: `better on ${input.primary.name} (sequential p ${w.p.toPrecision(3)} < ${input.alpha}, Holm across treatments)` };
  }

  const mde = minimumEffectAbsolute(input.primary, input.minimumEffect);
  if (mde !== null && input.primary.treatments.every((t) => cannotReach(t, input.primary.direction, mde))) {
    return { action: 'futility', reason: `no treatment can beat the control on ${input.primary.name} by the minimum effect ${mde.toPrecision(3)} (always-valid interval)` };
  }
  if (input.maxUnitsPerVariant != null && fewest >= input.maxUnitsPerVariant) {
    return { action: 'futility', reason: `maximum sample of ${input.maxUnitsPerVariant} units per variant reached without a winner` };
  }
  return { action: 'continue', reason: 'no significant difference yet' };
}

/** true: better than control, false: worse, null: no difference (or none estimated). */
function better(t: TreatmentResult, direction: Direction): boolean | null {
  if (t.diff === null || t.diff === 0) return null;
  return direction === 'increase' ? t.diff > 0 : t.diff < 0;
}

function minimumEffectAbsolute(primary: MetricResult, effect: MinimumEffect | null | undefined): number | null {
  if (!effect) return null;
  if (effect.kind === 'absolute') return effect.value;
  const controlMean = primary.treatments[0]?.control_mean ?? null;
  return controlMean === null || controlMean === 0 ? null : effect.value * Math.abs(controlMean);
}

function cannotReach(t: TreatmentResult, direction: Direction, mde: number): boolean {
  if (t.seq_ci === null) return false;
  return direction === 'increase' ? t.seq_ci[1] < mde : t.seq_ci[0] > -mde;
}
