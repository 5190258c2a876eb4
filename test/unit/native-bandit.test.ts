import { describe, expect, it } from 'vitest';
import { createRng, linucbScores, shermanMorrisonUpdate } from '../../src/native.js';
import { mulberry32, randomF64 } from '../helpers/random.js';

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
