/**
 * One variant's confidence interval (the dashboard draws each variant's mean with it, beside
 * the treatment-vs-control intervals of analyze.ts), matching scipy and statsmodels (checked in
 * test/analyze/variant-interval.test.ts against scripts/stats/variant_interval_reference.py):
 *
 * - a mean over units: Student's t, mean +- t(1 - alpha/2, n - 1) * sd / sqrt(n)
 *   (scipy.stats.t.interval(1 - alpha, n - 1, loc=mean, scale=sd / sqrt(n)));
 * - a rate: Wilson's score interval (statsmodels proportion_confint(method='wilson')), which stays
 *   inside [0, 1] and is not empty at 0 or n successes, unlike the Wald interval.
 *
 * Null when it is undefined: a mean needs two units, a rate one.
 */
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import tQuantile from '@stdlib/stats-base-dists-t-quantile';
import { assertAlpha, assertRate, assertSummary, intervalOrNull, type Interval, type RateSummary, type Summary } from './summary.js';

export function meanInterval(s: Summary, alpha = 0.05): Interval | null {
  assertSummary(s, 'variant');
  assertAlpha(alpha);
  if (s.n < 2) return null;
  const half = tQuantile(1 - alpha / 2, s.n - 1) * Math.sqrt(s.variance / s.n);
  return intervalOrNull(s.mean - half, s.mean + half);
}

export function wilsonInterval(r: RateSummary, alpha = 0.05): Interval | null {
  assertRate(r, 'variant');
  assertAlpha(alpha);
  if (r.n === 0) return null;
  const z = normalQuantile(1 - alpha / 2, 0, 1);
  const p = r.successes / r.n;
  const z2n = (z * z) / r.n;
  const centre = (p + z2n / 2) / (1 + z2n);
  const half = (z / (1 + z2n)) * Math.sqrt((p * (1 - p)) / r.n + z2n / (4 * r.n));
  return intervalOrNull(centre - half, centre + half);
}
