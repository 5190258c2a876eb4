/**
 * Sample-ratio mismatch: Pearson's chi-square of the observed units per variant against the counts
 * the allocation intended (scipy.stats.chisquare(observed, expected); checked in
 * test/analyze/reference.test.ts). A mismatch means assignment or logging is broken, so no result
 * of the experiment can be trusted while it stands.
 *
 * Allocations may change while an experiment runs, so the intended share of variant i is averaged
 * over the weight periods: share_i = sum_p f_p * w_i(p) / sum_j w_j(p), with f_p the fraction of the
 * experiment's units first exposed during period p. A unit keeps the variant it was first assigned,
 * so it counts in the period it arrived in. Give each period's `units` (first exposures counted by
 * the store) when known; otherwise give `fraction` (e.g. the period's share of the run time, which
 * assumes steady traffic). All periods must use the same one. expected_i = total observed * share_i.
 *
 * Threshold: p < 0.001 by default, the standard practice (Microsoft ExP, GrowthBook, Optimizely use
 * 0.001 or 0.0005): the check runs at every look, and at 0.05 one healthy experiment in twenty
 * would be flagged and blocked.
 */
import gammainc from '@stdlib/math-base-special-gammainc';

export const DEFAULT_SRM_THRESHOLD = 0.001;

export interface WeightPeriod {
  /** Allocation weights per variant, control first; any positive scale (normalised per period). */
  weights: number[];
  /** Units first exposed during this period. */
  units?: number;
  /** This period's share of the traffic (e.g. of the run time), when unit counts are unknown. */
  fraction?: number;
}

export interface SrmResult {
  expected: number[];
  chi2: number;
  df: number;
  /** null when fewer than two variants could receive units (nothing to compare). */
  p: number | null;
  mismatch: boolean;
}

export function sampleRatioMismatch(observed: readonly number[], periods: readonly WeightPeriod[], threshold = DEFAULT_SRM_THRESHOLD): SrmResult {
  const k = observed.length;
  if (k < 2) throw new Error('srm: needs at least two variants');
  if (periods.length === 0) throw new Error('srm: needs at least one weight period');
  for (const o of observed) if (!(Number.isInteger(o) && o >= 0)) throw new Error(`srm: observed count ${o} is not a count`);
  const byUnits = periods[0]!.units !== undefined;
  const periodShares = periods.map((p, i) => {
    if (p.weights.length !== k) throw new Error(`srm: period ${i} has ${p.weights.length} weights for ${k} variants`);
    const share = byUnits ? p.units : p.fraction;
    if (share === undefined || (byUnits ? p.fraction !== undefined : p.units !== undefined)) {
      throw new Error('srm: every period must give units, or every period fraction');
    }
    if (!(share >= 0) || !Number.isFinite(share)) throw new Error(`srm: period ${i} share ${share} is not a non-negative number`);
    return share;
  });
  const totalShare = periodShares.reduce((a, b) => a + b, 0);
  const total = observed.reduce((a, b) => a + b, 0);
  const share = new Array<number>(k).fill(0);
  periods.forEach((p, i) => {
    const sum = p.weights.reduce((a, b) => a + b, 0);
    if (p.weights.some((w) => !(w >= 0)) || !(sum > 0)) throw new Error(`srm: period ${i} weights are not non-negative with a positive sum`);
    // A period nobody arrived in (or an all-zero set of shares: fall back to equal periods).
    const f = totalShare > 0 ? periodShares[i]! / totalShare : 1 / periods.length;
    p.weights.forEach((w, v) => { share[v] = share[v]! + (f * w) / sum; });
  });
  const expected = share.map((s) => total * s);

  let chi2 = 0;
  let cells = 0;
  let impossible = false;
  expected.forEach((e, v) => {
    if (e > 0) {
      chi2 += (observed[v]! - e) ** 2 / e;
      cells++;
    } else if (observed[v]! > 0) {
      impossible = true; // units in a variant that never had weight: certainly broken
    }
  });
  if (impossible) return { expected, chi2: Number.MAX_VALUE, df: Math.max(cells - 1, 1), p: 0, mismatch: true };
  if (total === 0 || cells < 2) return { expected, chi2: 0, df: 0, p: null, mismatch: false };
  const df = cells - 1;
  // Upper regularised incomplete gamma = chi-square survival function, accurate for tiny p
  // (1 - cdf would round them to 0).
  const p = gammainc(chi2 / 2, df / 2, true, true);
  return { expected, chi2, df, p, mismatch: p < threshold };
}
