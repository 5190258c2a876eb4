/**
 * Seeded simulations of whole experiments through the analysis (the acceptance):
 * - 1,000 A/A experiments looked at after each of 20 batches: the always-valid test's
 *   false-positive rate stays at most alpha, the naive repeated Welch test's is far above it;
 * - A/B/C experiments with one truly better treatment: decide() stops for it, not the others;
 * - SRM fires on 52/48 splits of 20,000 units meant 50/50, and on fair splits (with a weight change
 *   mid-way) fires at about its threshold;
 * - CUPED narrows the interval when the covariate is correlated, and keeps its coverage.
 * The rates are printed for the README.
 */
import { describe, expect, it } from 'vitest';
import { analyzeMetric, sequentialStates, type MetricResult } from '../../src/analyze/analyze.js';
import { decide } from '../../src/analyze/decide.js';
import type { SequentialState } from '../../src/analyze/sequential.js';
import { sequentialTest } from '../../src/analyze/sequential.js';
import { sampleRatioMismatch } from '../../src/analyze/srm.js';
import type { Summary } from '../../src/analyze/summary.js';
import { welch } from '../../src/analyze/welch.js';
import { mulberry32 } from '../../src/random.js';

const ALPHA = 0.05;
const LOOKS = 20;
const BATCH = 50; // units per variant per look: 1,000 per variant at the last look
const TUNING = 2 * LOOKS * BATCH; // tuned to the experiment's final size, as sequential.ts advises

/** Box-Muller on mulberry32: standard normal draws, reproducible from the seed. */
function normals(seed: number): () => number {
  const u = mulberry32(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const a = 2 * Math.PI * u();
    spare = r * Math.sin(a);
    return r * Math.cos(a);
  };
}

/** Running sums of one variant, read as a Summary at each look (what the store's SQL returns). */
class Sums {
  n = 0;
  sum = 0;
  sumSq = 0;
  add(x: number): void {
    this.n++;
    this.sum += x;
    this.sumSq += x * x;
  }
  summary(): Summary {
    const mean = this.sum / this.n;
    return { n: this.n, mean, variance: Math.max(0, (this.sumSq - this.n * mean * mean) / (this.n - 1)) };
  }
}

/** Binomial bounds: count within k standard deviations of n p. */
function withinBinomial(count: number, n: number, p: number, k = 4): boolean {
  const sd = Math.sqrt(n * p * (1 - p));
  return Math.abs(count - n * p) <= k * sd;
}

describe('simulations', () => {
  it('A/A: sequential false positives <= alpha over 20 looks; naive repeated t-tests far above', () => {
    const experiments = 1000;
    let sequentialFp = 0;
    let naiveFp = 0;
    let naiveLastLookFp = 0;
    for (let e = 0; e < experiments; e++) {
      const draw = normals(1_000_003 + e);
      const control = new Sums();
      const treatment = new Sums();
      let state: SequentialState | null = null;
      let seqHit = false;
      let naiveHit = false;
      for (let look = 1; look <= LOOKS; look++) {
        for (let i = 0; i < BATCH; i++) {
          control.add(draw());
          treatment.add(draw());
        }
        const c = control.summary();
        const t = treatment.summary();
        state = sequentialTest(c, t, { alpha: ALPHA, tuning: TUNING, previous: state });
        if (state.p! < ALPHA) seqHit = true;
        const naive = welch(c, t, ALPHA).p!;
        if (naive < ALPHA) naiveHit = true;
        if (look === LOOKS && naive < ALPHA) naiveLastLookFp++;
      }
      if (seqHit) sequentialFp++;
      if (naiveHit) naiveFp++;
    }
    const seqRate = sequentialFp / experiments;
    const naiveRate = naiveFp / experiments;
    console.log(`A/A, ${experiments} experiments x ${LOOKS} looks of ${BATCH} units per variant: sequential false-positive rate ${seqRate.toFixed(3)}, naive repeated t-test ${naiveRate.toFixed(3)}, single t-test at the last look ${(naiveLastLookFp / experiments).toFixed(3)} (alpha ${ALPHA})`);
    expect(seqRate).toBeLessThanOrEqual(ALPHA);
    expect(naiveRate).toBeGreaterThan(2 * ALPHA);
    // The last look alone is one fixed-horizon test: about alpha (a check on the simulation itself).
    expect(withinBinomial(naiveLastLookFp, experiments, ALPHA)).toBe(true);
  });

  it('A/B/C with one truly better treatment: decide() stops for it', () => {
    const experiments = 300;
    const effect = 0.2; // standard deviations
    const outcomes = { right: 0, wrong: 0, harm: 0, futility: 0, none: 0 };
    let stopLooks = 0;
    for (let e = 0; e < experiments; e++) {
      const draw = normals(2_000_003 + e);
      const sums = [new Sums(), new Sums(), new Sums()];
      let previous: (SequentialState | null)[] = [null, null];
      let stopped = false;
      for (let look = 1; look <= LOOKS && !stopped; look++) {
        for (let i = 0; i < BATCH; i++) {
          sums[0]!.add(draw());
          sums[1]!.add(draw());
          sums[2]!.add(draw() + effect);
        }
        const [control, b, c] = sums.map((s) => s.summary()) as [Summary, Summary, Summary];
        const primary: MetricResult = analyzeMetric({ name: 'reward', role: 'primary', data: { kind: 'mean', control, treatments: [b, c] }, previous }, { alpha: ALPHA, sequentialTuning: TUNING });
        previous = sequentialStates(primary);
        const d = decide({
          variants: ['control', 'b', 'c'], primary, unitsPerVariant: sums.map((s) => s.n), minUnitsPerVariant: 200,
          elapsedMs: look * 3_600_000, minRuntimeMs: 4 * 3_600_000, srmMismatch: false, alpha: ALPHA,
        });
        if (d.action === 'continue') continue;
        stopped = true;
        stopLooks += look;
        if (d.action === 'winner') outcomes[d.variant === 'c' ? 'right' : 'wrong']++;
        else outcomes[d.action]++;
      }
      if (!stopped) outcomes.none++;
    }
    const stoppedRight = outcomes.right / experiments;
    console.log(`A/B/C, effect ${effect} sd on c, ${experiments} experiments: winner c ${stoppedRight.toFixed(3)}, wrong winner ${(outcomes.wrong / experiments).toFixed(3)}, harm ${(outcomes.harm / experiments).toFixed(3)}, no decision by ${LOOKS * BATCH} units per variant ${(outcomes.none / experiments).toFixed(3)}, mean look of a stop ${(stopLooks / Math.max(1, experiments - outcomes.none)).toFixed(1)} of ${LOOKS}`);
    expect(stoppedRight).toBeGreaterThan(0.8);
    expect(outcomes.wrong / experiments).toBeLessThanOrEqual(ALPHA);
    expect(outcomes.harm / experiments).toBeLessThanOrEqual(ALPHA);
  });

  it('SRM: fires on 52/48 splits of 20,000 units meant 50/50, and at about its threshold on fair splits', () => {
    const units = 20_000;
    expect(sampleRatioMismatch([10_400, 9_600], [{ weights: [50, 50], units }]).mismatch).toBe(true);
    let skewedFires = 0;
    const skewed = 200;
    for (let s = 0; s < skewed; s++) {
      const u = mulberry32(3_000_003 + s);
      let a = 0;
      for (let i = 0; i < units; i++) if (u() < 0.52) a++;
      if (sampleRatioMismatch([a, units - a], [{ weights: [50, 50], units }]).mismatch) skewedFires++;
    }
    // Fair splits with a weight change after the first quarter: 50/50, then 70/30.
    const fair = 2000;
    const firstPeriod = units / 4;
    let firesDefault = 0;
    let fires05 = 0;
    for (let s = 0; s < fair; s++) {
      const u = mulberry32(4_000_003 + s);
      let a = 0;
      for (let i = 0; i < units; i++) if (u() < (i < firstPeriod ? 0.5 : 0.7)) a++;
      const periods = [{ weights: [50, 50], units: firstPeriod }, { weights: [70, 30], units: units - firstPeriod }];
      const r = sampleRatioMismatch([a, units - a], periods);
      if (r.mismatch) firesDefault++;
      if (r.p! < 0.05) fires05++;
    }
    console.log(`SRM: 52/48 of ${units} units meant 50/50 fires in ${skewedFires}/${skewed}; fair splits with a 50/50 -> 70/30 change: fires ${firesDefault}/${fair} at p < 0.001 (expect ${fair * 0.001}), ${fires05}/${fair} at p < 0.05 (expect ${fair * 0.05})`);
    expect(skewedFires / skewed).toBeGreaterThan(0.95);
    expect(withinBinomial(firesDefault, fair, 0.001)).toBe(true);
    expect(withinBinomial(fires05, fair, 0.05)).toBe(true);
  });

  it('CUPED narrows the interval when the covariate is correlated, and keeps coverage', () => {
    const experiments = 400;
    const n = 500;
    const rho = 0.7;
    const effect = 0.1;
    const missing = 0.2; // share of units without a pre-period value (new users)
    let ratioSum = 0;
    let narrower = 0;
    let covered = 0;
    for (let e = 0; e < experiments; e++) {
      const draw = normals(5_000_003 + e);
      const u = mulberry32(6_000_003 + e);
      const variants = [0, effect].map((shift) => {
        const x = new Sums();
        let m = 0, sc = 0, scc = 0, sxc = 0, sxp = 0;
        for (let i = 0; i < n; i++) {
          const c = 3 + draw();
          const v = shift + rho * (c - 3) + Math.sqrt(1 - rho * rho) * draw();
          x.add(v);
          if (u() < missing) continue;
          m++;
          sc += c;
          scc += c * c;
          sxc += v * c;
          sxp += v;
        }
        const meanC = sc / m;
        return {
          metric: x.summary(),
          covariate: { n: m, mean: meanC, variance: (scc - m * meanC * meanC) / (m - 1), covariance: (sxc - m * meanC * (sxp / m)) / (m - 1) },
        };
      });
      const data = { kind: 'mean' as const, control: variants[0]!.metric, treatments: [variants[1]!.metric] };
      const raw = analyzeMetric({ name: 'reward', role: 'primary', data }).treatments[0]!;
      const adjusted = analyzeMetric({ name: 'reward', role: 'primary', data: { ...data, covariates: { control: variants[0]!.covariate, treatments: [variants[1]!.covariate] } } }).treatments[0]!;
      const ratio = (adjusted.ci![1] - adjusted.ci![0]) / (raw.ci![1] - raw.ci![0]);
      ratioSum += ratio;
      if (ratio < 1) narrower++;
      if (adjusted.ci![0] <= effect && effect <= adjusted.ci![1]) covered++;
    }
    const meanRatio = ratioSum / experiments;
    console.log(`CUPED, corr ${rho}, ${missing * 100}% of units without a covariate, ${experiments} experiments of ${n} units per variant: interval width ${meanRatio.toFixed(3)} of the unadjusted (narrower in ${narrower}/${experiments}), 95% coverage ${(covered / experiments).toFixed(3)}`);
    // Expected ratio ~ sqrt(0.8 (1 - rho^2) + 0.2) = 0.78
    expect(meanRatio).toBeLessThan(0.85);
    expect(narrower / experiments).toBeGreaterThan(0.95);
    expect(withinBinomial(covered, experiments, 0.95)).toBe(true);
  });
});
