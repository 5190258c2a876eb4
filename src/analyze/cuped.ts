/**
 * CUPED (Deng, Xu, Kohavi, Walker 2013): subtract from each unit's metric the part its pre-period
 * covariate predicts, y = x - theta (c - mean c), which keeps every variant's expected mean
 * difference (the covariate predates treatment) and shrinks the variance by the factor 1 - corr^2.
 *
 * Inputs, per variant: the metric's Summary over all its n units, and the covariate's summary over
 * the m <= n units that have one: its mean, sample variance and sample covariance with x (n - 1).
 *
 * Units without a covariate are kept (dropping them would drop new users and change the
 * population) and take their variant's covariate mean. That imputation adds nothing to the
 * covariate's sums of squares or co-moments, so the summaries of all n units follow exactly:
 *   S_cc = (m - 1) var_c,  S_xc = (m - 1) cov_xc,  mean c over n units = mean c over the m units.
 * (A variant where no unit has one takes the covariate mean of the others; its variance is not reduced.)
 *
 * theta = sum_v S_xc(v) / sum_v S_cc(v): the within-variant pooled slope, i.e. the coefficient of
 * c in the OLS x ~ C(variant) + c. The total covariance over all units would add between-variant
 * terms n_v (mean_x(v) - mean_x)(mean_c(v) - mean_c), and mean_x(v) carries the treatment effect:
 * the effect would leak into theta. With this theta the adjusted difference equals the treatment
 * coefficient of statsmodels OLS x ~ C(variant) + (c - mean c) on the same rows exactly
 * (test/analyze/reference.test.ts).
 *
 * Variance: each variant's sample variance of its adjusted values y_i, i.e.
 *   var_x - 2 theta cov_xc + theta^2 var_c  (over the n units, imputed ones included),
 * and Welch on the adjusted Summaries: the same as scipy's ttest_ind(equal_var=False) on the
 * adjusted column (checked exactly). It treats theta as known, as Deng et al. and GrowthBook do
 * (estimating theta costs one degree of freedom out of thousands); it is close to, not equal to,
 * the OLS standard error (which pools the variances).
 */
import { assertSummary, type Summary } from './summary.js';

export interface CovariateSummary {
  /** Units of the variant that have a covariate value (0..n). */
  n: number;
  mean: number;
  /** Sample variance of the covariate over those units. */
  variance: number;
  /** Sample covariance of metric and covariate over those units. */
  covariance: number;
}

export interface CupedVariant {
  metric: Summary;
  covariate: CovariateSummary | null;
}

export interface CupedResult {
  theta: number;
  /** Mean of the covariate over all units (imputed included): the centre of the adjustment. */
  covariate_mean: number;
  /** Per variant, in input order: Summary of the adjusted values x - theta (c - covariate_mean). */
  adjusted: Summary[];
}

export function cupedAdjust(variants: readonly CupedVariant[]): CupedResult {
  if (variants.length === 0) throw new Error('cuped: no variants');
  let covUnits = 0;
  let covSum = 0;
  for (const [i, v] of variants.entries()) {
    assertSummary(v.metric, `cuped variant ${i}`);
    const c = v.covariate;
    if (c && c.n > 0) {
      if (!(Number.isInteger(c.n) && c.n <= v.metric.n) || !Number.isFinite(c.mean) || !(c.variance >= 0) || !Number.isFinite(c.covariance)) {
        throw new Error(`cuped variant ${i}: bad covariate summary`);
      }
      covUnits += c.n;
      covSum += c.n * c.mean;
    }
  }
  const fallbackMean = covUnits > 0 ? covSum / covUnits : 0;
  const parts = variants.map(({ metric, covariate: c }) => {
    const has = c !== null && c.n > 0;
    return {
      metric,
      meanC: has ? c.mean : fallbackMean,
      scc: has && c.n > 1 ? (c.n - 1) * c.variance : 0,
      sxc: has && c.n > 1 ? (c.n - 1) * c.covariance : 0,
    };
  });
  const sxc = parts.reduce((a, p) => a + p.sxc, 0);
  const scc = parts.reduce((a, p) => a + p.scc, 0);
  const theta = scc > 0 ? sxc / scc : 0; // a constant covariate predicts nothing
  const totalN = parts.reduce((a, p) => a + p.metric.n, 0);
  const covariateMean = totalN > 0 ? parts.reduce((a, p) => a + p.metric.n * p.meanC, 0) / totalN : 0;
  const adjusted = parts.map(({ metric, meanC, scc: sccV, sxc: sxcV }) => {
    const mean = metric.mean - theta * (meanC - covariateMean);
    if (metric.n < 2) return { n: metric.n, mean, variance: 0 };
    const ssx = (metric.n - 1) * metric.variance;
    // Rounding can take a near-perfect fit a hair below zero.
    const ss = Math.max(0, ssx - 2 * theta * sxcV + theta * theta * sccV);
    return { n: metric.n, mean, variance: ss / (metric.n - 1) };
  });
  return { theta, covariate_mean: covariateMean, adjusted };
}
