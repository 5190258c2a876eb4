/**
 * A bandit's learned state as one Float64Array: what the learner updates, what the state cell
 * (src/learn/state-cell.ts) publishes to every I/O thread, what checkpoints store, and, past its
 * derived head, what replicas add to each other (sufficient statistics are additive).
 *
 *   linear families   [A^-1 (K*d*d) | A (K*d*d) | b (K*d) | n (K)]   A = sum x x' (no prior),
 *                     A^-1 = (lambda I + A)^-1: derived, rebuilt from A after a merge
 *   Thompson Bernoulli [s (K) | f (K)]                                sums of r and 1 - r
 *   Thompson Gaussian  [n (K) | sum (K) | sumsq (K)]
 *
 * Every array is row-major per arm; `additiveFrom` is where the additive part starts.
 */
import { isLinear, type BanditConfig } from './config.js';

export interface Layout {
  length: number;
  /** Index of the first additive value (everything before it is derived). */
  additiveFrom: number;
  /** Linear families: offsets of A^-1, A, b, n. */
  aInv: number;
  a: number;
  b: number;
  n: number;
}

export function layoutOf(c: BanditConfig): Layout {
  const { arms: k, dims: d } = c;
  if (isLinear(c)) {
    const dd = k * d * d;
    return { length: 2 * dd + k * d + k, additiveFrom: dd, aInv: 0, a: dd, b: 2 * dd, n: 2 * dd + k * d };
  }
  if (c.kind === 'thompson' && c.reward === 'gaussian') return { length: 3 * k, additiveFrom: 0, aInv: -1, a: -1, b: -1, n: 0 };
  return { length: 2 * k, additiveFrom: 0, aInv: -1, a: -1, b: -1, n: -1 };
}

/** The state before any feedback: A^-1 = I / lambda per arm for the linear families, zeros otherwise. */
export function initialState(c: BanditConfig): Float64Array {
  const l = layoutOf(c);
  const s = new Float64Array(l.length);
  if (isLinear(c)) {
    const d = c.dims;
    for (let k = 0; k < c.arms; k++) {
      for (let i = 0; i < d; i++) s[l.aInv + k * d * d + i * d + i] = 1 / c.lambda;
    }
  }
  return s;
}

/** Feedback events per arm in `s` (observations; for Bernoulli, s + f). */
export function armCounts(c: BanditConfig, s: Float64Array, out: Float64Array): void {
  const l = layoutOf(c);
  const k = c.arms;
  if (l.n >= 0) {
    for (let i = 0; i < k; i++) out[i] = s[l.n + i]!;
  } else {
    for (let i = 0; i < k; i++) out[i] = s[i]! + s[k + i]!;
  }
}
