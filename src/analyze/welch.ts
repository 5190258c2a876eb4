/**
 * Welch's t-test from two per-variant Summaries (scipy.stats.ttest_ind(equal_var=False) and its
 * confidence_interval(); checked against it in test/analyze/reference.test.ts).
 *
 * - diff = treatment mean - control mean; se = sqrt(s_t^2 / n_t + s_c^2 / n_c).
 * - df by Welch-Satterthwaite; p two-sided from Student's t; CI = diff +- t_{1-alpha/2, df} se.
 * - lift = diff / control mean, its CI by the delta method on the ratio of two independent means
 *   (gradient [1/m_c, -m_t/m_c^2]), with the normal quantile: the delta method is asymptotic, so a
 *   t quantile would only pretend to more precision. Not Fieller: Fieller's set can be unbounded or
 *   two rays when the control mean is near zero, which a dashboard cannot show. Undefined (null)
 *   when the control mean is 0.
 * - Cohen's d = diff / pooled SD, pooled SD = sqrt(((n_c - 1) s_c^2 + (n_t - 1) s_t^2) / (n_c + n_t - 2)).
 *
 * With n < 2 in a variant, or no variance at all, nothing can be tested: those fields are null.
 */
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import tCdf from '@stdlib/stats-base-dists-t-cdf';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import { assertAlpha, assertSummary, finiteOrNull, intervalOrNull, type Interval, type Summary } from './summary.js';

export interface WelchResult {
  diff: number | null;
  se: number | null;
  t: number | null;
  df: number | null;
  p: number | null;
  ci: Interval | null;
  lift: number | null;
  lift_ci: Interval | null;
  cohen_d: number | null;
}

export function welch(control: Summary, treatment: Summary, alpha = 0.05): WelchResult {
  assertSummary(control, 'control');
  assertSummary(treatment, 'treatment');
  assertAlpha(alpha);
  const empty = control.n === 0 || treatment.n === 0;
  const diff = empty ? null : treatment.mean - control.mean;
  const lift = empty || control.mean === 0 ? null : (treatment.mean - control.mean) / control.mean;
  const out: WelchResult = { diff, se: null, t: null, df: null, p: null, ci: null, lift, lift_ci: null, cohen_d: null };
  if (control.n < 2 || treatment.n < 2 || diff === null) return out;

  const vc = control.variance / control.n;
  const vt = treatment.variance / treatment.n;
  const se = Math.sqrt(vc + vt);
  const pooledDf = control.n + treatment.n - 2;
  const pooledSd = Math.sqrt(((control.n - 1) * control.variance + (treatment.n - 1) * treatment.variance) / pooledDf);
  out.cohen_d = pooledSd > 0 ? finiteOrNull(diff / pooledSd) : null;
  if (!(se > 0)) return out; // both variants constant: no sampling variability to test against

  const df = (vc + vt) ** 2 / (vc ** 2 / (control.n - 1) + vt ** 2 / (treatment.n - 1));
  const t = diff / se;
  out.se = se;
  out.t = finiteOrNull(t);
  out.df = finiteOrNull(df);
  // Lower tail of -|t| (not 1 - cdf) keeps tiny p-values accurate.
  out.p = finiteOrNull(Math.min(1, 2 * tCdf(-Math.abs(t), df)));
  const half = tQuantile(1 - alpha / 2, df) * se;
  out.ci = intervalOrNull(diff - half, diff + half);

  if (lift !== null) {
    const mc = control.mean;
    const liftSe = Math.sqrt(vt / (mc * mc) + (treatment.mean * treatment.mean * vc) / mc ** 4);
    const z = normalQuantile(1 - alpha / 2, 0, 1);
    out.lift_ci = intervalOrNull(lift - z * liftSe, lift + z * liftSe);
  }
  return out;
}
