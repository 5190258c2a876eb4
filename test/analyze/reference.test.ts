/**
 * The experiment statistics against scipy and statsmodels on fixed data:
 * test/fixtures/stats/experiments-reference.json, written by scripts/stats/experiments_reference.py
 * from the raw data in that script (the TypeScript gets only the per-variant summaries).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeMetric } from '../../src/analyze/analyze.js';
import { cupedAdjust, type CovariateSummary } from '../../src/analyze/cuped.js';
import { holm } from '../../src/analyze/holm.js';
import { twoProportions } from '../../src/analyze/proportions.js';
import { sequentialLook } from '../../src/analyze/sequential.js';
import { sampleRatioMismatch, type WeightPeriod } from '../../src/analyze/srm.js';
import type { Interval, RateSummary, Summary } from '../../src/analyze/summary.js';
import { welch } from '../../src/analyze/welch.js';
import { projectRoot } from '../../src/paths.js';

interface Reference {
  welch: { alpha: number; control: Summary; treatment: Summary; diff: number; t: number; df: number; p: number; ci: Interval; lift: number; lift_ci: Interval; cohen_d: number }[];
  proportions: { alpha: number; control: RateSummary; treatment: RateSummary; diff: number; z: number; p: number; ci: Interval; lift: number; lift_ci: Interval }[];
  holm: { p: number[]; adjusted: number[] };
  srm: { observed: number[]; periods: WeightPeriod[]; expected: number[]; chi2: number; df: number; p: number }[];
  sequential: { alpha: number; tuning: number; control: Summary; treatment: Summary; p: number; ci: Interval }[];
  cuped: {
    alpha: number; theta: number; covariate_mean: number;
    variants: { metric: Summary; covariate: CovariateSummary }[];
    treatments: { ols_diff: number; diff: number; t: number; df: number; p: number; ci: Interval; raw_ci: Interval }[];
  };
}

const ref = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/experiments-reference.json'), 'utf8')) as Reference;

function close(actual: number | null | undefined, expected: number, what: string, rel = 1e-9): void {
  expect(actual, what).not.toBeNull();
  expect(actual, what).toBeDefined();
  const tolerance = rel * Math.max(Math.abs(expected), 1e-300);
  expect(Math.abs(actual! - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance);
}

function closeInterval(actual: Interval | null, expected: Interval, what: string, rel = 1e-9): void {
  expect(actual, what).not.toBeNull();
  close(actual![0], expected[0], `${what} low`, rel);
  close(actual![1], expected[1], `${what} high`, rel);
}

describe('Welch t-test = scipy.stats.ttest_ind(equal_var=False)', () => {
  ref.welch.forEach((c, i) => {
    it(`case ${i} (alpha ${c.alpha})`, () => {
      const r = welch(c.control, c.treatment, c.alpha);
      close(r.diff, c.diff, 'diff');
      close(r.t, c.t, 't');
      close(r.df, c.df, 'df');
      close(r.p, c.p, 'p');
      closeInterval(r.ci, c.ci, 'ci');
      close(r.lift, c.lift, 'lift');
      closeInterval(r.lift_ci, c.lift_ci, 'lift_ci');
      close(r.cohen_d, c.cohen_d, 'cohen_d');
    });
  });
});

describe('two-proportion test = statsmodels proportions_ztest / confint_proportions_2indep', () => {
  ref.proportions.forEach((c, i) => {
    it(`case ${i} (alpha ${c.alpha})`, () => {
      const r = twoProportions(c.control, c.treatment, c.alpha);
      close(r.diff, c.diff, 'diff');
      close(r.z, c.z, 'z');
      close(r.p, c.p, 'p');
      closeInterval(r.ci, c.ci, 'ci');
      close(r.lift, c.lift, 'lift');
      closeInterval(r.lift_ci, c.lift_ci, 'lift_ci');
    });
  });
});

it('Holm = statsmodels multipletests(method="holm")', () => {
  const adjusted = holm(ref.holm.p);
  ref.holm.adjusted.forEach((expected, i) => close(adjusted[i], expected, `p[${i}]`));
});

describe('SRM chi-square = scipy.stats.chisquare over weight periods', () => {
  ref.srm.forEach((c, i) => {
    it(`case ${i}`, () => {
      const r = sampleRatioMismatch(c.observed, c.periods);
      c.expected.forEach((e, v) => close(r.expected[v], e, `expected[${v}]`));
      close(r.chi2, c.chi2, 'chi2');
      expect(r.df).toBe(c.df);
      close(r.p, c.p, 'p');
      expect(r.mismatch).toBe(c.p < 0.001);
    });
  });
});

describe('always-valid confidence sequence = the gbstats formulas on the raw data', () => {
  ref.sequential.forEach((c, i) => {
    it(`case ${i} (alpha ${c.alpha})`, () => {
      const r = sequentialLook(c.control, c.treatment, c.alpha, c.tuning);
      close(r.p, c.p, 'p');
      closeInterval(r.ci, c.ci, 'ci');
    });
  });
});

describe('CUPED = statsmodels OLS x ~ C(variant) + (c - mean c), then Welch on the adjusted column', () => {
  const c = ref.cuped;
  it('theta and the adjusted differences equal the OLS coefficients', () => {
    const r = cupedAdjust(c.variants);
    close(r.theta, c.theta, 'theta');
    close(r.covariate_mean, c.covariate_mean, 'covariate mean');
    c.treatments.forEach((t, i) => close(r.adjusted[i + 1]!.mean - r.adjusted[0]!.mean, t.ols_diff, `OLS treatment ${i + 1} coefficient`));
  });

  it('analyzeMetric with covariates = scipy Welch on the adjusted values, and narrower than without', () => {
    const [control, ...treatments] = c.variants;
    const data = { kind: 'mean' as const, control: control!.metric, treatments: treatments.map((v) => v.metric) };
    const adjusted = analyzeMetric({ name: 'reward', role: 'primary', data: { ...data, covariates: { control: control!.covariate, treatments: treatments.map((v) => v.covariate) } } }, { alpha: c.alpha });
    const raw = analyzeMetric({ name: 'reward', role: 'primary', data }, { alpha: c.alpha });
    close(adjusted.cuped_theta, c.theta, 'theta');
    c.treatments.forEach((t, i) => {
      const r = adjusted.treatments[i]!;
      close(r.diff, t.diff, `diff ${i}`);
      close(r.statistic, t.t, `t ${i}`);
      close(r.df, t.df, `df ${i}`);
      close(r.p, t.p, `p ${i}`);
      closeInterval(r.ci, t.ci, `ci ${i}`);
      closeInterval(raw.treatments[i]!.ci, t.raw_ci, `raw ci ${i}`);
      expect(r.ci![1] - r.ci![0]).toBeLessThan(t.raw_ci[1] - t.raw_ci[0]);
    });
  });
});
