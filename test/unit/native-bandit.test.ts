import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import {
  createRng, invertSpd, linearArmStats, linearArmStatsScalar, linearServingForm, linearServingFormLength, linearServingStats, linearServingStatsScalar,
  linucbLearn, linucbScores, shermanMorrisonUpdate,
} from '../../src/native.js';
import { projectRoot } from '../../src/paths.js';
import { mulberry32, randomF32, randomF64 } from '../helpers/random.js';

/** Sample mean, variance and fourth central moment. */
function moments(xs: Float64Array): { mean: number; variance: number; m4: number } {
  let mean = 0;
  for (const x of xs) mean += x;
  mean /= xs.length;
  let m2 = 0;
  let m4 = 0;
  for (const x of xs) {
    const d = (x - mean) ** 2;
    m2 += d;
    m4 += d * d;
  }
  return { mean, variance: m2 / (xs.length - 1), m4: m4 / xs.length };
}

/** Checks mean and variance against theory within 5 standard errors. */
function expectMoments(xs: Float64Array, mean: number, variance: number, what: string): void {
  const n = xs.length;
  const s = moments(xs);
  const seMean = Math.sqrt(variance / n);
  const seVar = Math.sqrt(Math.max(s.m4 - variance * variance, 0) / n);
  expect(Math.abs(s.mean - mean), `${what} mean ${s.mean} vs ${mean}`).toBeLessThan(5 * seMean);
  expect(Math.abs(s.variance - variance), `${what} variance ${s.variance} vs ${variance}`).toBeLessThan(5 * seVar + 1e-12);
}

const N = 200_000;

describe('Gamma and Beta sampling (Marsaglia-Tsang)', () => {
  it.each([
    [0.3, 1],
    [1, 2],
    [2.5, 0.5],
    [10, 3],
  ])('Gamma(%d, %d) samples have the theoretical mean and variance', (shape, scale) => {
    const out = new Float64Array(N);
    createRng(42).fillGamma(shape, scale, out);
    expect(out.every((x) => x > 0 && Number.isFinite(x))).toBe(true);
    expectMoments(out, shape * scale, shape * scale * scale, `Gamma(${shape},${scale})`);
  });

  it.each([
    [0.5, 0.5],
    [2, 5],
    [10, 1],
    [0.05, 0.2],
  ])('Beta(%d, %d) samples have the theoretical mean and variance', (a, b) => {
    const out = new Float64Array(N);
    createRng(7).fillBeta(a, b, out);
    expect(out.every((x) => x >= 0 && x <= 1)).toBe(true);
    const mean = a / (a + b);
    const variance = (a * b) / ((a + b) ** 2 * (a + b + 1));
    expectMoments(out, mean, variance, `Beta(${a},${b})`);
  });

  it('is reproducible for a seed and differs between seeds', () => {
    const seq = (seed: number) => {
      const r = createRng(seed);
      return [r.nextF64(), r.normal(), r.gamma(2), r.beta(2, 3)];
    };
    expect(seq(123)).toEqual(seq(123));
    expect(seq(123)).not.toEqual(seq(124));
  });

  it('rejects invalid parameters with coded errors', () => {
    const r = createRng(1);
    for (const bad of [() => r.gamma(0), () => r.gamma(-1), () => r.gamma(NaN), () => r.gamma(2, 0), () => r.beta(1, Infinity)]) {
      expect(bad).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    }
    expect(() => createRng(-1)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    expect(() => createRng(1.5)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
  });
});

describe('Thompson-sampling arm selection', () => {
  it('picks equal arms uniformly (chi-square) and reports the samples it drew', () => {
    const rng = createRng(99);
    const K = 4;
    const alphas = new Float64Array(K).fill(2);
    const betas = new Float64Array(K).fill(2);
    const samples = new Float64Array(K);
    const counts = new Array<number>(K).fill(0);
    const draws = 40_000;
    for (let i = 0; i < draws; i++) {
      const k = rng.thompsonSelect(alphas, betas, samples);
      counts[k]!++;
      expect(samples[k]).toBe(Math.max(...samples));
    }
    const expected = draws / K;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(16.27); // chi-square 3 dof, p = 0.001
  });

  it('matches the win probability of two Beta arms', () => {
    // P(Beta(3,2) > Beta(2,3)) = integral of f_X(x) F_Y(x) dx, with f_X = 12x^2(1-x) and
    // F_Y = 6x^2 - 8x^3 + 3x^4; integrated numerically here (= 53/70).
    let p = 0;
    const steps = 100_000;
    for (let i = 0; i < steps; i++) {
      const x = (i + 0.5) / steps;
      p += (12 * x * x * (1 - x) * (6 * x * x - 8 * x ** 3 + 3 * x ** 4)) / steps;
    }
    const rng = createRng(5);
    const alphas = new Float64Array([3, 2]);
    const betas = new Float64Array([2, 3]);
    let wins = 0;
    const draws = 100_000;
    for (let i = 0; i < draws; i++) if (rng.thompsonSelect(alphas, betas) === 0) wins++;
    expect(Math.abs(wins / draws - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / draws));
  });

  it('rejects empty or mismatched arms', () => {
    const rng = createRng(1);
    expect(() => rng.thompsonSelect(new Float64Array(0), new Float64Array(0))).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    expect(() => rng.thompsonSelect(new Float64Array(2).fill(1), new Float64Array(3).fill(1))).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_SHAPE_MISMATCH' }));
    expect(() => rng.thompsonSelect(new Float64Array([1, 0]), new Float64Array([1, 1]))).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
  });
});

/** Gauss-Jordan inverse with partial pivoting: an independent reference for Sherman-Morrison. */
function invert(a: Float64Array, d: number): Float64Array {
  const m = new Float64Array(a);
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) inv[i * d + i] = 1;
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(m[r * d + c]!) > Math.abs(m[p * d + c]!)) p = r;
    for (let k = 0; k < d; k++) {
      [m[c * d + k], m[p * d + k]] = [m[p * d + k]!, m[c * d + k]!];
      [inv[c * d + k], inv[p * d + k]] = [inv[p * d + k]!, inv[c * d + k]!];
    }
    const piv = m[c * d + c]!;
    for (let k = 0; k < d; k++) {
      m[c * d + k]! /= piv;
      inv[c * d + k]! /= piv;
    }
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = m[r * d + c]!;
      for (let k = 0; k < d; k++) {
        m[r * d + k]! -= f * m[c * d + k]!;
        inv[r * d + k]! -= f * inv[c * d + k]!;
      }
    }
  }
  return inv;
}

describe('LinUCB', () => {
  it('Sherman-Morrison updates equal a direct inverse of A = lambda I + sum x x^T', () => {
    const r = mulberry32(3);
    for (let trial = 0; trial < 20; trial++) {
      const d = 1 + Math.floor(r() * 12);
      const lambda = 0.5 + r() * 2;
      const A = new Float64Array(d * d);
      const aInv = new Float64Array(d * d);
      const b = new Float64Array(d);
      const bWant = new Float64Array(d);
      for (let i = 0; i < d; i++) {
        A[i * d + i] = lambda;
        aInv[i * d + i] = 1 / lambda;
      }
      const updates = 1 + Math.floor(r() * 40);
      for (let u = 0; u < updates; u++) {
        const x = randomF64(d, trial * 1000 + u, 2);
        const reward = r() * 2 - 1;
        expect(shermanMorrisonUpdate(aInv, b, x, reward)).toBe(true);
        for (let i = 0; i < d; i++) {
          bWant[i]! += reward * x[i]!;
          for (let j = 0; j < d; j++) A[i * d + j]! += x[i]! * x[j]!;
        }
      }
      const direct = invert(A, d);
      for (let i = 0; i < d * d; i++) expect(aInv[i]).toBeCloseTo(direct[i]!, 8);
      for (let i = 0; i < d; i++) expect(b[i]).toBeCloseTo(bWant[i]!, 12);
    }
  });

  it('scores equal theta.x + alpha sqrt(x^T A^-1 x) computed directly', () => {
    const K = 3;
    const d = 5;
    const aInv = new Float64Array(K * d * d);
    const b = new Float64Array(K * d);
    const As: Float64Array[] = [];
    for (let k = 0; k < K; k++) {
      const A = new Float64Array(d * d);
      for (let i = 0; i < d; i++) A[i * d + i] = 1;
      for (let u = 0; u < 10 + k; u++) {
        const x = randomF64(d, 100 * k + u);
        for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) A[i * d + j]! += x[i]! * x[j]!;
        for (let i = 0; i < d; i++) b[k * d + i]! += (k + 1) * 0.1 * x[i]!;
      }
      As.push(A);
      aInv.set(invert(A, d), k * d * d);
    }
    const x = randomF64(d, 777);
    const alpha = 0.7;
    const out = new Float64Array(K);
    linucbScores(aInv, b, x, alpha, out);
    for (let k = 0; k < K; k++) {
      const ai = aInv.subarray(k * d * d, (k + 1) * d * d);
      const theta = new Float64Array(d);
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) theta[i]! += ai[i * d + j]! * b[k * d + j]!;
      let mean = 0;
      let v = 0;
      for (let i = 0; i < d; i++) {
        mean += theta[i]! * x[i]!;
        for (let j = 0; j < d; j++) v += x[i]! * ai[i * d + j]! * x[j]!;
      }
      expect(out[k]).toBeCloseTo(mean + alpha * Math.sqrt(v), 10);
    }
  });

  it('rejects inconsistent state with coded errors and leaves state unchanged', () => {
    const aInv = new Float64Array([1, 0, 0, 1]);
    const b = new Float64Array(2);
    expect(() => shermanMorrisonUpdate(aInv, b, new Float64Array(3), 1)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_SHAPE_MISMATCH' }));
    expect(() => shermanMorrisonUpdate(aInv, b, new Float64Array([NaN, 1]), 1)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    expect(() => shermanMorrisonUpdate(aInv, b, new Float64Array([1, 1]), Infinity)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    expect(() => shermanMorrisonUpdate(aInv, aInv.subarray(0, 2), new Float64Array([1, 1]), 1)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_ALIASED_ARGUMENT' }));
    expect(() => linucbScores(aInv, b, new Float64Array(2), 1, new Float64Array(0))).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    expect([...aInv]).toEqual([1, 0, 0, 1]);
    // A numerically singular update (1 + x'A^-1 x <= 0) is refused, not applied.
    const neg = new Float64Array([-1, 0, 0, -1]);
    expect(shermanMorrisonUpdate(neg, b, new Float64Array([1, 0]), 1)).toBe(false);
    expect([...neg]).toEqual([-1, 0, 0, -1]);
  });
});

/** A linear-bandit state of K arms in one SharedArrayBuffer, laid out [A^-1 | A | b], with A = lambda I. */
function sharedState(K: number, d: number, lambda: number): { sab: SharedArrayBuffer; aInv: Float64Array; a: Float64Array; b: Float64Array } {
  const sab = new SharedArrayBuffer((2 * K * d * d + K * d) * 8);
  const aInv = new Float64Array(sab, 0, K * d * d);
  const a = new Float64Array(sab, K * d * d * 8, K * d * d);
  const b = new Float64Array(sab, 2 * K * d * d * 8, K * d);
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < d; i++) {
      a[k * d * d + i * d + i] = lambda;
      aInv[k * d * d + i * d + i] = 1 / lambda;
    }
  }
  return { sab, aInv, a, b };
}

/** Random learning events: arms, FP32 contexts and rewards. */
function events(n: number, K: number, d: number, seed: number): { arms: Uint32Array; x: Float32Array; rewards: Float64Array } {
  const r = mulberry32(seed);
  return {
    arms: Uint32Array.from({ length: n }, () => Math.floor(r() * K)),
    x: randomF32(n * d, seed + 1),
    rewards: Float64Array.from({ length: n }, () => r() * 2 - 1),
  };
}

function expectRelClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(Math.abs(got[i]! - want[i]!), `${what}[${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(want[i]!)));
  }
}

const codeOf = (code: string) => expect.objectContaining({ code });

describe('linear-bandit kernels on SharedArrayBuffer state', () => {
  const K = 4;
  const d = 13; // not a multiple of 4: the SIMD path's block and tail columns both run

  it('learns into SAB state and its stats equal the scalar reference and linucbScores', () => {
    const s = sharedState(K, d, 1);
    const ev = events(400, K, d, 31);
    expect(linucbLearn(s.aInv, s.a, s.b, ev.arms, ev.x, ev.rewards)).toBe(400);
    const rows = 3;
    const x = randomF32(rows * d, 77);
    const xShared = new Float32Array(new SharedArrayBuffer(x.byteLength));
    xShared.set(x);
    const outs = new SharedArrayBuffer(2 * rows * K * 8);
    const means = new Float64Array(outs, 0, rows * K);
    const widths = new Float64Array(outs, rows * K * 8, rows * K);
    linearArmStats(s.aInv, s.b, xShared, rows, means, widths);
    const refMeans = new Float64Array(rows * K);
    const refWidths = new Float64Array(rows * K);
    linearArmStatsScalar(s.aInv, s.b, x, rows, refMeans, refWidths);
    expectRelClose(means, refMeans, 1e-12, 'means');
    expectRelClose(widths, refWidths, 1e-12, 'widths');
    // The existing f64 scores: mean + alpha * width, per row.
    const alpha = 0.8;
    const scores = new Float64Array(K);
    for (let r = 0; r < rows; r++) {
      linucbScores(s.aInv, s.b, Float64Array.from(x.subarray(r * d, (r + 1) * d)), alpha, scores);
      const ours = Array.from({ length: K }, (_, k) => means[r * K + k]! + alpha * widths[r * K + k]!);
      expectRelClose(ours, scores, 1e-10, `row ${r} scores`);
    }
  });

  it('learns what Sherman-Morrison one event at a time does, A summed directly, A^-1 = invertSpd(A)', () => {
    const s = sharedState(K, d, 2);
    const ev = events(300, K, d, 5);
    const ref = sharedState(K, d, 2);
    for (let i = 0; i < 300; i++) {
      const k = ev.arms[i]!;
      const xi = Float64Array.from(ev.x.subarray(i * d, (i + 1) * d));
      expect(shermanMorrisonUpdate(ref.aInv.subarray(k * d * d, (k + 1) * d * d), ref.b.subarray(k * d, (k + 1) * d), xi, ev.rewards[i]!)).toBe(true);
      for (let p = 0; p < d; p++) for (let q = 0; q < d; q++) ref.a[k * d * d + p * d + q]! += xi[p]! * xi[q]!;
    }
    // Three batches: the state carries over between calls.
    let applied = 0;
    for (const [lo, hi] of [[0, 1], [1, 120], [120, 300]] as const) {
      applied += linucbLearn(s.aInv, s.a, s.b, ev.arms.subarray(lo, hi), ev.x.subarray(lo * d, hi * d), ev.rewards.subarray(lo, hi));
    }
    expect(applied).toBe(300);
    expectRelClose(s.aInv, ref.aInv, 1e-9, 'aInv');
    expectRelClose(s.a, ref.a, 1e-12, 'a');
    expectRelClose(s.b, ref.b, 1e-12, 'b');
    const rebuilt = new Float64Array(new SharedArrayBuffer(d * d * 8));
    for (let k = 0; k < K; k++) {
      expect(invertSpd(s.a.subarray(k * d * d, (k + 1) * d * d), rebuilt)).toBe(true);
      expectRelClose(rebuilt, s.aInv.subarray(k * d * d, (k + 1) * d * d), 1e-9, `arm ${k} A^-1 rebuilt`);
      expectRelClose(rebuilt, invert(s.a.slice(k * d * d, (k + 1) * d * d), d), 1e-9, `arm ${k} vs Gauss-Jordan`);
    }
  });

  it('gives a worker thread reading the shared state the main thread answers', async () => {
    const s = sharedState(K, d, 1);
    const ev = events(200, K, d, 8);
    linucbLearn(s.aInv, s.a, s.b, ev.arms, ev.x, ev.rewards);
    // The worker reads A^-1 and b from the front of a SAB laid out [A^-1 | b].
    const state = new SharedArrayBuffer((K * d * d + K * d) * 8);
    new Float64Array(state).set(s.aInv);
    new Float64Array(state, K * d * d * 8).set(s.b);
    const rows = 2;
    const x = randomF32(rows * d, 12);
    const nativeModule = pathToFileURL(path.join(projectRoot, 'dist/src/native.js')).href;
    const got = await new Promise<{ means: number[]; widths: number[] }>((resolve, reject) => {
      const w = new Worker(new URL('../fixtures/native-bandit-worker.mjs', import.meta.url), {
        workerData: { nativeModule, state, K, d, x: [...x], rows },
      });
      w.once('message', resolve);
      w.once('error', reject);
    });
    const means = new Float64Array(rows * K);
    const widths = new Float64Array(rows * K);
    linearArmStats(s.aInv, s.b, x, rows, means, widths);
    expect(got.means).toEqual([...means]);
    expect(got.widths).toEqual([...widths]);
  });

  it('refuses a bad batch whole, before changing anything, and skips singular events', () => {
    const s = sharedState(2, 2, 1);
    const before = Float64Array.from(new Float64Array(s.sab));
    const x = new Float32Array([1, 0, 0, 1]);
    const bad: Array<[() => unknown, string]> = [
      [() => linucbLearn(s.aInv, s.a, s.b, new Uint32Array([0, 2]), x, new Float64Array(2)), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linucbLearn(s.aInv, s.a, s.b, new Uint32Array([0, 1]), new Float32Array([1, 0, NaN, 1]), new Float64Array(2)), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linucbLearn(s.aInv, s.a, s.b, new Uint32Array([0, 1]), x, new Float64Array([0, Infinity])), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linucbLearn(s.aInv, s.a, s.b, new Uint32Array([0, 1]), x, new Float64Array(3)), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linucbLearn(s.aInv, s.a, s.b, new Uint32Array([0, 1]), new Float32Array(3), new Float64Array(2)), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linucbLearn(s.aInv, s.a.subarray(1), s.b, new Uint32Array([0]), x.subarray(0, 2), new Float64Array(1)), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linucbLearn(s.aInv, s.aInv, s.b, new Uint32Array([0]), x.subarray(0, 2), new Float64Array(1)), 'ERR_NATIVE_ALIASED_ARGUMENT'],
      [() => linucbLearn(s.aInv, s.a, s.b, new Uint32Array([0]), new Float32Array(s.sab, 0, 2), new Float64Array(1)), 'ERR_NATIVE_ALIASED_ARGUMENT'],
      [() => linucbLearn(s.aInv, s.a, s.b, new Uint32Array([0]), x.subarray(0, 2), [1] as unknown as Float64Array), 'ERR_NATIVE_INVALID_ARGUMENT'],
    ];
    for (const [call, code] of bad) expect(call).toThrow(codeOf(code));
    expect(new Float64Array(s.sab)).toEqual(before);
    // Arm 1's A^-1 = -I makes 1 + x'A^-1 x = 0 for a unit x: singular, skipped on all three arrays.
    s.aInv.set([-1, 0, 0, -1], 4);
    expect(linucbLearn(s.aInv, s.a, s.b, new Uint32Array([1, 0]), x, new Float64Array([1, 1]))).toBe(1);
    expect([...s.aInv.subarray(4), ...s.a.subarray(4), ...s.b.subarray(2)]).toEqual([-1, 0, 0, -1, 1, 0, 0, 1, 0, 0]);
    expect([...s.a.subarray(0, 4)]).toEqual([1, 0, 0, 2]);
  });

  it('checks arm-stats sizes, finite contexts and overlapping outputs', () => {
    const s = sharedState(3, 2, 1);
    const x = new Float32Array([0.5, -1]);
    const m = new Float64Array(3);
    const w = new Float64Array(3);
    const bad: Array<[() => unknown, string]> = [
      [() => linearArmStats(s.aInv, s.b, x, 0, m, w), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearArmStats(s.aInv, s.b, x, 1.5, m, w), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearArmStats(s.aInv, s.b, new Float32Array([0.5, NaN]), 1, m, w), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearArmStats(s.aInv, s.b, x, 2, m, w), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearArmStats(s.aInv.subarray(1), s.b, x, 1, m, w), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearArmStats(s.aInv, s.b.subarray(1), x, 1, m, w), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearArmStats(s.aInv, s.b, new Float32Array(3), 1, m, w), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearArmStats(s.aInv, s.b, x, 1, m, new Float64Array(2)), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearArmStats(s.aInv, s.b, x, 1, s.aInv.subarray(0, 3), w), 'ERR_NATIVE_ALIASED_ARGUMENT'],
      [() => linearArmStats(s.aInv, s.b, x, 1, m, m), 'ERR_NATIVE_ALIASED_ARGUMENT'],
      [() => linearArmStats(s.aInv, s.b, Float64Array.from(x) as unknown as Float32Array, 1, m, w), 'ERR_NATIVE_INVALID_ARGUMENT'],
    ];
    for (const [call, code] of bad) expect(call).toThrow(codeOf(code));
    // Outputs in the state's own SharedArrayBuffer are fine where they overlap no input.
    linearArmStats(s.aInv, s.b, x, 1, s.a.subarray(0, 3), s.a.subarray(3, 6));
    expect([...s.a.subarray(3, 6)]).toEqual(Array(3).fill(Math.hypot(0.5, 1)));
  });

  it('decides from the serving form as from the state: the same means, widths to f32 rounding, under a third of the values', () => {
    const s = sharedState(K, d, 1);
    const ev = events(400, K, d, 32);
    expect(linucbLearn(s.aInv, s.a, s.b, ev.arms, ev.x, ev.rewards)).toBe(400);
    const len = linearServingFormLength(K, d);
    expect(len).toBeLessThan((K * d * d) / 4 + K * 8 * d);
    // In shared memory like the state it comes from; NaN first, so a value not written shows.
    const form = new Float64Array(new SharedArrayBuffer(len * 8)).fill(NaN);
    linearServingForm(s.aInv, s.b, form);
    expect(form.every(Number.isFinite)).toBe(true);
    const rows = 3;
    const x = randomF32(rows * d, 78);
    const [m, w, mScalar, wScalar, ref, refW] = Array.from({ length: 6 }, () => new Float64Array(rows * K));
    linearServingStats(form, x, rows, m!, w!);
    linearServingStatsScalar(form, x, rows, mScalar!, wScalar!);
    linearArmStatsScalar(s.aInv, s.b, x, rows, ref!, refW!);
    // Means in f64 as from the state; widths from the form's f32 triangle (native/src/bandit/serving_form.rs).
    expectRelClose(m!, ref!, 1e-12, 'means');
    expectRelClose(w!, refW!, 1e-5, 'widths');
    expectRelClose(mScalar!, ref!, 1e-12, 'scalar means');
    expectRelClose(wScalar!, refW!, 1e-5, 'scalar widths');
  });

  it('checks serving-form sizes, finite states and contexts, and overlapping outputs', () => {
    const s = sharedState(3, 2, 1);
    const form = new Float64Array(linearServingFormLength(3, 2));
    const x = new Float32Array([0.5, -1]);
    const m = new Float64Array(3);
    const w = new Float64Array(3);
    const nanB = Float64Array.from(s.b);
    nanB[1] = NaN;
    const big = new Float64Array(s.aInv.length + form.length);
    const bad: Array<[() => unknown, string]> = [
      [() => linearServingFormLength(0, 2), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearServingFormLength(3, 1.5), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearServingForm(s.aInv, s.b, form.subarray(1)), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearServingForm(s.aInv.subarray(1), s.b, form), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearServingForm(s.aInv, nanB, form), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearServingForm(big.subarray(0, s.aInv.length), s.b, big.subarray(4, 4 + form.length)), 'ERR_NATIVE_ALIASED_ARGUMENT'],
      [() => linearServingStats(form, x, 0, m, w), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearServingStats(form, new Float32Array([0.5, NaN]), 1, m, w), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => linearServingStats(form, new Float32Array(3), 1, m, w), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearServingStats(form.subarray(1), x, 1, m, w), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearServingStats(form, x, 1, m, new Float64Array(2)), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => linearServingStats(form, x, 1, m, m), 'ERR_NATIVE_ALIASED_ARGUMENT'],
      [() => linearServingStats(form, x, 1, form.subarray(0, 3), w), 'ERR_NATIVE_ALIASED_ARGUMENT'],
    ];
    for (const [call, code] of bad) expect(call).toThrow(codeOf(code));
    expect(form.every((v) => v === 0)).toBe(true);
    // A^-1 = I: width |x|, mean 0, as from the state itself.
    linearServingForm(s.aInv, s.b, form);
    linearServingStats(form, x, 1, m, w);
    expect([...w]).toEqual(Array(3).fill(Math.hypot(0.5, 1)));
    expect([...m]).toEqual([0, 0, 0]);
  });

  it('inverts SPD matrices and refuses the rest, leaving out untouched', () => {
    const A = new Float64Array([4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2]);
    const out = new Float64Array(9);
    expect(invertSpd(A, out)).toBe(true);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        let v = 0;
        for (let k = 0; k < 3; k++) v += out[i * 3 + k]! * A[k * 3 + j]!;
        expect(Math.abs(v - (i === j ? 1 : 0))).toBeLessThan(1e-12);
      }
    }
    const kept = new Float64Array(4).fill(7);
    for (const notSpd of [[1, 2, 2, 1], [1, 1, 1, 1], [2, 0, 1, 2]]) expect(invertSpd(new Float64Array(notSpd), kept)).toBe(false);
    expect([...kept]).toEqual([7, 7, 7, 7]);
    expect(() => invertSpd(new Float64Array(3), new Float64Array(3))).toThrow(codeOf('ERR_NATIVE_SHAPE_MISMATCH'));
    expect(() => invertSpd(new Float64Array(4), new Float64Array(9))).toThrow(codeOf('ERR_NATIVE_SHAPE_MISMATCH'));
    expect(() => invertSpd(new Float64Array([1, 0, 0, NaN]), kept)).toThrow(codeOf('ERR_NATIVE_INVALID_ARGUMENT'));
    expect(() => invertSpd(A, A)).toThrow(codeOf('ERR_NATIVE_ALIASED_ARGUMENT'));
  });
});

interface ThompsonCase {
  kind: 'normal' | 'beta';
  a: number[];
  b: number[];
  probs: number[];
}

describe('Thompson sampling with pick probabilities', () => {
  const fixture = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/thompson-probs.json'), 'utf8')) as { cases: ThompsonCase[] };

  it.each(fixture.cases.map((c) => [c.kind, c.a.join(','), c]))('%s arms (%s): probabilities match scipy quadrature (scripts/stats/thompson_probs.py)', (_kind, _a, c) => {
    const rng = createRng(17);
    const a = new Float64Array(c.a);
    const b = new Float64Array(new SharedArrayBuffer(c.b.length * 8));
    b.set(c.b);
    const probs = new Float64Array(new SharedArrayBuffer(c.a.length * 8));
    const draws = 100_000;
    const select = c.kind === 'normal' ? rng.thompsonNormal.bind(rng) : rng.thompsonBeta.bind(rng);
    const pick = select(a, b, draws, probs);
    expect(pick).toBeGreaterThanOrEqual(0);
    expect(pick).toBeLessThan(c.a.length);
    for (let k = 0; k < c.a.length; k++) {
      const p = c.probs[k]!;
      expect(Math.abs(probs[k]! - p), `arm ${k}: ${probs[k]} vs ${p}`).toBeLessThanOrEqual(5 * Math.sqrt((p * (1 - p)) / draws) + 1e-12);
    }
    expect(probs.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12);
  });

  it('treats sd 0 as a point mass, ties to the lowest index, and leaves probs alone with draws 0', () => {
    const rng = createRng(3);
    const probs = new Float64Array(3).fill(9);
    expect(rng.thompsonNormal(new Float64Array([1, 3, 3]), new Float64Array(3), 0, probs)).toBe(1);
    expect([...probs]).toEqual([9, 9, 9]);
    expect(rng.thompsonNormal(new Float64Array([1, 3, 3]), new Float64Array(3), 10, probs)).toBe(1);
    expect([...probs]).toEqual([0, 1, 0]);
    expect(rng.thompsonBeta(new Float64Array([1000, 1]), new Float64Array([1, 1000]), 0)).toBe(0);
  });

  it('is reproducible for a seed', () => {
    const run = (seed: number) => {
      const rng = createRng(seed);
      const probs = new Float64Array(3);
      const picks = [rng.thompsonNormal(new Float64Array([0, 0.1, 0.2]), new Float64Array([1, 1, 1]), 50, probs), rng.thompsonBeta(new Float64Array([1, 2, 3]), new Float64Array([3, 2, 1]), 50, probs)];
      return [...picks, ...probs];
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
  });

  it('rejects bad parameters with coded errors', () => {
    const rng = createRng(1);
    const two = new Float64Array([1, 1]);
    const bad: Array<[() => unknown, string]> = [
      [() => rng.thompsonNormal(new Float64Array(0), new Float64Array(0), 0), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => rng.thompsonNormal(two, new Float64Array(3), 0), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => rng.thompsonNormal(two, new Float64Array([1, -1]), 0), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => rng.thompsonNormal(new Float64Array([NaN, 0]), two, 0), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => rng.thompsonNormal(two, two, -1), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => rng.thompsonNormal(two, two, 2.5), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => rng.thompsonNormal(two, two, 10, new Float64Array(3)), 'ERR_NATIVE_SHAPE_MISMATCH'],
      [() => rng.thompsonNormal(two, two, 10, two), 'ERR_NATIVE_ALIASED_ARGUMENT'],
      [() => rng.thompsonBeta(two, new Float64Array([1, 0]), 0), 'ERR_NATIVE_INVALID_ARGUMENT'],
      [() => rng.thompsonBeta(new Float64Array([Infinity, 1]), two, 0), 'ERR_NATIVE_INVALID_ARGUMENT'],
    ];
    for (const [call, code] of bad) expect(call).toThrow(codeOf(code));
  });
});
