/**
 * Two-proportion test for rate metrics, matching statsmodels (checked in
 * test/analyze/reference.test.ts):
 *
 * - z and p: statsmodels.stats.proportion.proportions_ztest([s_t, s_c], [n_t, n_c]) -- the pooled
 *   proportion's standard error, since under the null both variants share one rate.
 * - CI of the difference: confint_proportions_2indep(s_t, n_t, s_c, n_c, compare='diff',
 *   method='wald') -- unpooled, since outside the null the rates differ.
 * - lift = p_t / p_c - 1, its CI from confint_proportions_2indep(compare='ratio', method='log')
 *   (Katz log interval of the risk ratio) minus 1: a ratio of rates is skewed, its log is not.
 *   Undefined (null) when either variant has no successes (log of zero).
 * - cohen_d: the 0/1 per-unit values' Cohen's d (same pooled SD as for means), so both metric
 *   kinds report the same effect size.
 */
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import { assertAlpha, assertRate, finiteOrNull, intervalOrNull, rateAsSummary, type Interval, type RateSummary } from './summary.js';
import { welch } from './welch.js';

export interface ProportionsResult {
  diff: number | null;
  /** Unpooled standard error of the difference (the CI's). */
  se: number | null;
  z: number | null;
  p: number | null;
  ci: Interval | null;
  lift: number | null;
  lift_ci: Interval | null;
  cohen_d: number | null;
}

export function twoProportions(control: RateSummary, treatment: RateSummary, alpha = 0.05): ProportionsResult {
  assertRate(control, 'control');
  assertRate(treatment, 'treatment');
  assertAlpha(alpha);
  const out: ProportionsResult = { diff: null, se: null, z: null, p: null, ci: null, lift: null, lift_ci: null, cohen_d: null };
  if (control.n === 0 || treatment.n === 0) return out;
  const pc = control.successes / control.n;
  const pt = treatment.successes / treatment.n;
  const diff = pt - pc;
  out.diff = diff;
  out.lift = pc > 0 ? pt / pc - 1 : null;
  out.cohen_d = welch(rateAsSummary(control), rateAsSummary(treatment), alpha).cohen_d;
  const zq = normalQuantile(1 - alpha / 2, 0, 1);

  const pooled = (control.successes + treatment.successes) / (control.n + treatment.n);
  const pooledSe = Math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n));
  if (pooledSe > 0) {
    const z = diff / pooledSe;
    out.z = finiteOrNull(z);
    out.p = finiteOrNull(Math.min(1, 2 * normalCdf(-Math.abs(z), 0, 1)));
  }
  const se = Math.sqrt((pc * (1 - pc)) / control.n + (pt * (1 - pt)) / treatment.n);
  if (se > 0) {
    out.se = se;
    out.ci = intervalOrNull(diff - zq * se, diff + zq * se);
  }
  if (control.successes > 0 && treatment.successes > 0) {
    const logRatio = Math.log(pt / pc);
    const logSe = Math.sqrt(1 / treatment.successes - 1 / treatment.n + 1 / control.successes - 1 / control.n);
    out.lift_ci = intervalOrNull(Math.exp(logRatio - zq * logSe) - 1, Math.exp(logRatio + zq * logSe) - 1);
  }
  return out;
}
