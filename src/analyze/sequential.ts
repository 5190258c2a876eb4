/**
 * Always-valid inference for the difference in means, shown beside the fixed-horizon Welch result:
 * the asymptotic confidence sequence of Waudby-Smith et al. (2023, "Time-uniform central limit
 * theory and asymptotic confidence sequences", arXiv:2103.06476v7, eq. 9 and the p-value of eq.
 * 155), the one GrowthBook's gbstats uses (SequentialTwoSidedTTest). Its coverage holds
 * simultaneously over every look, so an experiment may be checked every minute and stopped the
 * first time p < alpha without inflating false positives (test/analyze/simulations.test.ts).
 *
 * With N = n_c + n_t units, se the Welch standard error and s2 = N se^2 (per-unit variance scale):
 *   rho^2  = (-2 ln alpha + ln(1 - 2 ln alpha)) / tuning
 *   half   = sqrt(s2) sqrt(2 (N rho^2 + 1) ln(sqrt(N rho^2 + 1) / alpha) / (N rho)^2)
 *   p      = min(1, sqrt(N rho^2 + 1) exp(-rho^2 N^2 diff^2 / (2 s2 (N rho^2 + 1))))
 * p < alpha exactly when 0 is outside diff +- half.
 *
 * tuning (default 5000, GrowthBook's): the total sample size where the sequence is tightest
 * relative to a fixed-horizon interval; set it near the experiment's expected size. Any positive
 * value keeps validity; it only moves where the power goes.
 *
 * p is an e-value's reciprocal: p_t = 1 / E_t. Ville's inequality bounds P(some t: E_t >= 1/alpha),
 * so the running minimum over looks is still a valid p-value and is what should be shown (a
 * p-value that rises after crossing alpha would invite re-reading); likewise the running
 * intersection of the intervals is a valid confidence sequence. Pass the previous look's values in
 * `previous` and persist what comes back.
 */
import { assertAlpha, assertSummary, intervalOrNull, type Interval, type Summary } from './summary.js';

export const DEFAULT_SEQUENTIAL_TUNING = 5000;

export interface SequentialState {
  p: number | null;
  ci: Interval | null;
}

export interface SequentialOptions {
  alpha?: number;
  tuning?: number;
  previous?: SequentialState | null;
}

/** This look's always-valid p-value and interval of treatment - control, not yet combined with earlier looks. */
export function sequentialLook(control: Summary, treatment: Summary, alpha: number, tuning: number): SequentialState {
  assertSummary(control, 'control');
  assertSummary(treatment, 'treatment');
  assertAlpha(alpha);
  if (!(tuning > 0) || !Number.isFinite(tuning)) throw new Error(`sequential tuning must be positive, got ${tuning}`);
  if (control.n < 2 || treatment.n < 2) return { p: null, ci: null };
  const se2 = control.variance / control.n + treatment.variance / treatment.n;
  if (!(se2 > 0)) return { p: null, ci: null };
  const n = control.n + treatment.n;
  const diff = treatment.mean - control.mean;
  const rho2 = (-2 * Math.log(alpha) + Math.log(1 - 2 * Math.log(alpha))) / tuning;
  const s2 = n * se2;
  const a = n * rho2 + 1;
  const half = Math.sqrt(s2) * Math.sqrt((2 * a * Math.log(Math.sqrt(a) / alpha)) / (n * n * rho2));
  // In logs: exp() of a large statistic would overflow to Infinity (p = 0 is the right limit anyway).
  const logP = 0.5 * Math.log(a) - (rho2 * n * n * diff * diff) / (2 * s2 * a);
  return { p: Math.min(1, Math.exp(logP)), ci: intervalOrNull(diff - half, diff + half) };
}

/** This look combined with the previous ones: running minimum p, running intersection of intervals. */
export function sequentialTest(control: Summary, treatment: Summary, options: SequentialOptions = {}): SequentialState {
  const now = sequentialLook(control, treatment, options.alpha ?? 0.05, options.tuning ?? DEFAULT_SEQUENTIAL_TUNING);
  const prev = options.previous;
  if (!prev) return now;
  const p = now.p === null ? prev.p : prev.p === null ? now.p : Math.min(prev.p, now.p);
  let ci = now.ci ?? prev.ci;
  if (now.ci && prev.ci) {
    const lo = Math.max(now.ci[0], prev.ci[0]);
    const hi = Math.min(now.ci[1], prev.ci[1]);
    // An empty intersection can only follow a miscoverage (probability <= alpha): keep this look's.
    ci = lo <= hi ? [lo, hi] : now.ci;
  }
  return { p, ci };
}
