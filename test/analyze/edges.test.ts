/**
 * The statistics on degenerate and hand-checkable inputs: n < 2, zero variance, zero control mean,
 * zero rates, null p-values in Holm, weight changes in the SRM check, running sequential state,
 * missing covariates, the Holm families of analyzeExperiment, and the refusals.
 */
import { describe, expect, it } from 'vitest';
import { analyzeExperiment, analyzeMetric, validateAnalysisOptions, type MetricInput } from '../../src/analyze/analyze.js';
import { cupedAdjust } from '../../src/analyze/cuped.js';
import { holm } from '../../src/analyze/holm.js';
import { twoProportions } from '../../src/analyze/proportions.js';
import { sequentialLook, sequentialTest } from '../../src/analyze/sequential.js';
import { sampleRatioMismatch } from '../../src/analyze/srm.js';
import { rateAsSummary, summarize } from '../../src/analyze/summary.js';
import { welch } from '../../src/analyze/welch.js';
import { SluiceError } from '../../src/errors.js';

const noNaN = (x: unknown): void => {
  const json = JSON.stringify(x, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `BAD ${v}` : v));
  expect(json).not.toContain('BAD');
};

describe('welch on degenerate summaries', () => {
  it('n < 2: only the difference and lift, everything else null', () => {
    const r = welch({ n: 1, mean: 2, variance: 0 }, { n: 10, mean: 3, variance: 1 });
    expect(r).toMatchObject({ diff: 1, lift: 0.5, t: null, df: null, p: null, ci: null, lift_ci: null, cohen_d: null });
    expect(welch({ n: 0, mean: 0, variance: 0 }, { n: 10, mean: 3, variance: 1 }).diff).toBeNull();
  });

  it('no variance in either variant: nothing to test, no NaN', () => {
    const r = welch({ n: 5, mean: 1, variance: 0 }, { n: 5, mean: 1, variance: 0 });
    expect(r).toMatchObject({ diff: 0, lift: 0, t: null, p: null, ci: null, cohen_d: null });
    noNaN(r);
  });

  it('zero control mean: lift and its interval are null, the test is not', () => {
    const r = welch({ n: 20, mean: 0, variance: 1 }, { n: 20, mean: 0.5, variance: 1 });
    expect(r.lift).toBeNull();
    expect(r.lift_ci).toBeNull();
    expect(r.p).toBeGreaterThan(0);
    noNaN(r);
  });

  it("Cohen's d uses the pooled SD (n - 1 weights), by hand", () => {
    // pooled variance = (9 * 4 + 19 * 1) / 28 = 55 / 28
    const r = welch({ n: 10, mean: 1, variance: 4 }, { n: 20, mean: 2, variance: 1 });
    expect(r.cohen_d).toBeCloseTo(1 / Math.sqrt(55 / 28), 12);
  });

  it('programmer errors are plain Errors', () => {
    expect(() => welch({ n: 2.5, mean: 0, variance: 1 }, { n: 3, mean: 0, variance: 1 })).toThrow(Error);
    expect(() => welch({ n: 3, mean: 0, variance: -1 }, { n: 3, mean: 0, variance: 1 })).toThrow(/not a summary/);
    expect(() => welch({ n: 3, mean: 0, variance: 1 }, { n: 3, mean: 0, variance: 1 }, 1.5)).toThrow(/alpha/);
  });
});

describe('two proportions on degenerate counts', () => {
  it('no units: all null', () => {
    expect(twoProportions({ n: 0, successes: 0 }, { n: 10, successes: 1 })).toMatchObject({ diff: null, p: null, ci: null, lift: null });
  });
  it('no successes anywhere: difference 0, untestable, no NaN', () => {
    const r = twoProportions({ n: 100, successes: 0 }, { n: 100, successes: 0 });
    expect(r).toMatchObject({ diff: 0, z: null, p: null, ci: null, lift: null, lift_ci: null });
    noNaN(r);
  });
  it('a control without successes: lift undefined, the test still runs', () => {
    const r = twoProportions({ n: 100, successes: 0 }, { n: 100, successes: 8 });
    expect(r.lift).toBeNull();
    expect(r.p).toBeLessThan(0.01);
    noNaN(r);
  });
  it('successes above n are a programmer error', () => {
    expect(() => twoProportions({ n: 10, successes: 11 }, { n: 10, successes: 1 })).toThrow(/rate summary/);
  });
});

describe('holm', () => {
  it('by hand, with ties and untestable entries left out of m', () => {
    // m = 3: sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, max(0.04, 0.04) = 0.04
    expect(holm([0.04, null, 0.01, 0.02])).toEqual([0.04, null, 0.03, 0.04]);
    expect(holm([0.6, 0.5])).toEqual([1, 1]);
    expect(holm([])).toEqual([]);
    expect(() => holm([Number.NaN])).toThrow(/not in \[0, 1\]/);
  });
});

describe('sample ratio mismatch', () => {
  it('expected counts follow the weight periods, by hand', () => {
    // 1,000 units at 50/50, then 3,000 at 80/20: control expects 500 + 2,400 = 2,900 of 4,000.
    const r = sampleRatioMismatch([2900, 1100], [{ weights: [1, 1], units: 1000 }, { weights: [0.8, 0.2], units: 3000 }]);
    expect(r.expected[0]).toBeCloseTo(2900, 9);
    expect(r.expected[1]).toBeCloseTo(1100, 9);
    expect(r.chi2).toBeCloseTo(0, 12);
    expect(r.p).toBeCloseTo(1, 9);
    expect(r.mismatch).toBe(false);
    // The same counts judged against the final weights alone would be a glaring mismatch.
    expect(sampleRatioMismatch([2900, 1100], [{ weights: [0.8, 0.2], units: 4000 }]).mismatch).toBe(true);
  });

  it('units in a variant that never had weight: certain mismatch; a never-weighted empty variant is not a cell', () => {
    expect(sampleRatioMismatch([100, 90, 3], [{ weights: [1, 1, 0], units: 193 }])).toMatchObject({ p: 0, mismatch: true });
    const r = sampleRatioMismatch([100, 90, 0], [{ weights: [1, 1, 0], units: 190 }]);
    expect(r.df).toBe(1);
    expect(r.mismatch).toBe(false);
  });

  it('no units yet: no p-value, no mismatch; the threshold is configurable', () => {
    expect(sampleRatioMismatch([0, 0], [{ weights: [1, 1], units: 0 }])).toMatchObject({ p: null, mismatch: false });
    expect(sampleRatioMismatch([530, 470], [{ weights: [1, 1], fraction: 1 }], 0.1).mismatch).toBe(true); // p = 0.058
    expect(sampleRatioMismatch([530, 470], [{ weights: [1, 1], fraction: 1 }]).mismatch).toBe(false);
  });

  it('malformed periods are programmer errors', () => {
    expect(() => sampleRatioMismatch([1, 2], [{ weights: [1], units: 3 }])).toThrow(/weights for 2 variants/);
    expect(() => sampleRatioMismatch([1, 2], [{ weights: [1, 1], units: 1 }, { weights: [1, 1], fraction: 0.5 }])).toThrow(/every period/);
    expect(() => sampleRatioMismatch([1, 2], [{ weights: [0, 0], units: 3 }])).toThrow(/positive sum/);
  });
});

describe('sequential state across looks', () => {
  const control = { n: 400, mean: 1, variance: 1 };
  it('running minimum p and running intersection of intervals', () => {
    const first = sequentialLook(control, { n: 400, mean: 1.3, variance: 1 }, 0.05, 5000);
    const later = sequentialTest(control, { n: 400, mean: 1.0, variance: 1 }, { previous: first });
    const alone = sequentialLook(control, { n: 400, mean: 1.0, variance: 1 }, 0.05, 5000);
    expect(alone.p!).toBeGreaterThan(first.p!);
    expect(later.p).toBe(first.p);
    expect(later.ci).toEqual([Math.max(first.ci![0], alone.ci![0]), Math.min(first.ci![1], alone.ci![1])]);
  });
  it('p < alpha exactly when the interval excludes 0', () => {
    for (const mean of [1.05, 1.1, 1.15, 1.2, 1.25, 1.3]) {
      const r = sequentialLook(control, { n: 400, mean, variance: 1 }, 0.05, 5000);
      expect(r.p! < 0.05).toBe(r.ci![0] > 0);
    }
  });
  it('untestable looks keep the previous state; huge effects give p = 0, not NaN', () => {
    const prev = { p: 0.2, ci: [-1, 1] as [number, number] };
    expect(sequentialTest({ n: 1, mean: 0, variance: 0 }, control, { previous: prev })).toEqual(prev);
    expect(sequentialLook(control, { n: 400, mean: 1e6, variance: 1 }, 0.05, 5000).p).toBe(0);
  });
});

describe('cuped', () => {
  it('a variant without any covariate is kept, unadjusted; a constant covariate gives theta 0', () => {
    const metric = { n: 10, mean: 2, variance: 1 };
    const r = cupedAdjust([
      { metric, covariate: { n: 8, mean: 1, variance: 2, covariance: 1 } },
      { metric, covariate: null },
    ]);
    expect(r.theta).toBeCloseTo(0.5, 12);
    expect(r.adjusted[1]!.variance).toBe(1);
    expect(cupedAdjust([{ metric, covariate: { n: 10, mean: 3, variance: 0, covariance: 0 } }]).theta).toBe(0);
  });

  it('missing covariates imputed with the variant mean = the formula on the completed column', () => {
    const x = [1, 3, 2, 5, 4, 6];
    const c = [0.5, 1.5, null, 2.5, null, 3];
    const present = c.flatMap((v, i) => (v === null ? [] : [i]));
    const cp = present.map((i) => c[i]!);
    const cMean = cp.reduce((a, b) => a + b, 0) / cp.length;
    const completed = c.map((v) => v ?? cMean);
    const xs = summarize(x);
    const cs = summarize(cp);
    const xp = present.map((i) => x[i]!);
    const xpMean = xp.reduce((a, b) => a + b, 0) / xp.length;
    const covariance = present.reduce((a, i) => a + (x[i]! - xpMean) * (c[i]! - cMean), 0) / (present.length - 1);
    const r = cupedAdjust([{ metric: xs, covariate: { n: cs.n, mean: cs.mean, variance: cs.variance, covariance } }]);
    const sxc = x.reduce((a, v, i) => a + (v - xs.mean) * (completed[i]! - cMean), 0);
    const scc = completed.reduce((a, v) => a + (v - cMean) ** 2, 0);
    expect(r.theta).toBeCloseTo(sxc / scc, 12);
    expect(r.adjusted[0]!.variance).toBeCloseTo(summarize(x.map((v, i) => v - r.theta * (completed[i]! - cMean))).variance, 12);
  });
});

describe('analyzeExperiment', () => {
  const mean = (m: number, n = 200): { n: number; mean: number; variance: number } => ({ n, mean: m, variance: 1 });
  const metric = (name: string, role: MetricInput['role'], t: number[]): MetricInput => ({ name, role, data: { kind: 'mean', control: mean(0), treatments: t.map((m) => mean(m)) } });

  it('Holm families: primary across treatments only, secondaries together, guardrails together', () => {
    const metrics = [metric('primary', 'primary', [0.2, 0.1]), metric('s1', 'secondary', [0.15, 0.3]), metric('s2', 'secondary', [0.05, 0.25]), metric('g', 'guardrail', [-0.1, 0.2])];
    const r = analyzeExperiment(metrics);
    const cells = (names: string[]): { p: number | null; p_holm: number | null; seq_p: number | null; seq_p_holm: number | null }[] =>
      r.metrics.filter((m) => names.includes(m.name)).flatMap((m) => m.treatments);
    for (const family of [['primary'], ['s1', 's2'], ['g']]) {
      const c = cells(family);
      expect(c.map((x) => x.p_holm)).toEqual(holm(c.map((x) => x.p)));
      expect(c.map((x) => x.seq_p_holm)).toEqual(holm(c.map((x) => x.seq_p)));
    }
    // Adding secondaries leaves the primary's adjusted p-values unchanged.
    expect(analyzeExperiment([metrics[0]!]).metrics[0]!.treatments).toEqual(r.metrics[0]!.treatments);
  });

  it('rates, empty variants and zero means go to JSON without NaN', () => {
    const r = analyzeExperiment([
      { name: 'conversion', role: 'primary', data: { kind: 'rate', control: { n: 0, successes: 0 }, treatments: [{ n: 5, successes: 0 }] } },
      { name: 'reward', role: 'secondary', data: { kind: 'mean', control: { n: 1, mean: 0, variance: 0 }, treatments: [{ n: 0, mean: 0, variance: 0 }] } },
    ]);
    noNaN(r);
    expect(r.metrics[0]!.treatments[0]).toMatchObject({ diff: null, p: null, p_holm: null, seq_p: null, df: null });
  });

  it('a rate metric reports z, the 0/1 Cohen d and a sequential result on the 0/1 values', () => {
    const control = { n: 2000, successes: 200 };
    const treatment = { n: 2000, successes: 260 };
    const r = analyzeMetric({ name: 'conversion', role: 'primary', data: { kind: 'rate', control, treatments: [treatment] } }).treatments[0]!;
    expect(r.statistic).toBe(twoProportions(control, treatment).z);
    expect(r.seq_p).toBe(sequentialLook(rateAsSummary(control), rateAsSummary(treatment), 0.05, 5000).p);
    expect(r.seq_p!).toBeGreaterThan(r.p!); // the price of looking at any time
  });

  it('user settings are checked with INVALID_ARGUMENT', () => {
    for (const bad of [{ alpha: 0 }, { alpha: 0.7 }, { sequentialTuning: -1 }, { srmThreshold: 1 }, { minimumEffect: 0 }]) {
      try {
        validateAnalysisOptions(bad);
        expect.fail(`accepted ${JSON.stringify(bad)}`);
      } catch (e) {
        expect(e).toBeInstanceOf(SluiceError);
        expect((e as SluiceError).code).toBe('INVALID_ARGUMENT');
      }
    }
    expect(() => validateAnalysisOptions({ alpha: 0.05, sequentialTuning: 10000, srmThreshold: 0.001, minimumEffect: 0.01 })).not.toThrow();
  });
});
