/**
 * Learning a bandit's state from feedback (the control plane's side; policy.ts is the serving
 * side): a mini-batch of (arm, context, reward) events applied in place, the batch's loss and
 * gradient norm for the stability monitor, and merging other replicas' additive deltas.
 */
import { invertSpd, linucbLearn } from '../../native.js';
import { isLinear, type BanditConfig } from './config.js';
import { layoutOf } from './layout.js';

/** A mini-batch: n events, their arms, contexts (n x d) and rewards. */
export interface BanditBatch {
  n: number;
  arms: Uint32Array;
  x: Float32Array;
  rewards: Float64Array;
}

/** How well the state before the update predicted the batch: what the stability monitor judges. */
export interface BatchFit {
  /** Mean squared error of the chosen arms' predicted rewards. */
  loss: number;
  /** Norm of the mean least-squares gradient (linear families), else the mean absolute error. */
  gradNorm: number;
}

/** Why a batch cannot be applied at all (non-finite values, rewards outside the model's range). */
export function batchProblem(c: BanditConfig, b: BanditBatch): string | undefined {
  for (let i = 0; i < b.n; i++) {
    const r = b.rewards[i]!;
    if (!Number.isFinite(r)) return `reward ${i} is not finite`;
    if (c.kind === 'thompson' && c.reward === 'bernoulli' && (r < 0 || r > 1)) return `reward ${i} is ${r}, outside [0, 1] (Bernoulli)`;
    if (b.arms[i]! >= c.arms) return `arm ${b.arms[i]} of event ${i} is out of range`;
  }
  if (isLinear(c)) {
    const x = b.x;
    for (let i = 0; i < b.n * c.dims; i++) if (!Number.isFinite(x[i]!)) return `context value ${i} is not finite`;
  }
  return undefined;
}

/** The batch's fit to `state` (before it is applied). */
export function batchFit(c: BanditConfig, state: Float64Array, b: BanditBatch): BatchFit {
  const k = c.arms;
  const l = layoutOf(c);
  if (b.n === 0) return { loss: 0, gradNorm: 0 };
  if (isLinear(c)) {
    const d = c.dims;
    // theta_k = A_k^-1 b_k, once per arm the batch touches.
    const theta = new Float64Array(k * d);
    const touched = new Uint8Array(k);
    for (let i = 0; i < b.n; i++) touched[b.arms[i]!] = 1;
    for (let a = 0; a < k; a++) {
      if (!touched[a]) continue;
      const ai = l.aInv + a * d * d;
      const bo = l.b + a * d;
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += state[ai + i * d + j]! * state[bo + j]!;
        theta[a * d + i] = s;
      }
    }
    const grad = new Float64Array(d);
    let sq = 0;
    for (let e = 0; e < b.n; e++) {
      const a = b.arms[e]!;
      let pred = 0;
      for (let j = 0; j < d; j++) pred += theta[a * d + j]! * b.x[e * d + j]!;
      const res = b.rewards[e]! - pred;
      sq += res * res;
      for (let j = 0; j < d; j++) grad[j]! += res * b.x[e * d + j]!;
    }
    let g = 0;
    for (let j = 0; j < d; j++) g += (grad[j]! / b.n) ** 2;
    return { loss: sq / b.n, gradNorm: Math.sqrt(g) };
  }
  let sq = 0;
  let abs = 0;
  for (let e = 0; e < b.n; e++) {
    const a = b.arms[e]!;
    const mean = c.kind === 'thompson' && c.reward === 'bernoulli'
      ? (c.priorAlpha + state[a]!) / (c.priorAlpha + c.priorBeta + state[a]! + state[k + a]!)
      : state[a]! > 0 ? state[k + a]! / state[a]! : 0;
    const res = b.rewards[e]! - mean;
    sq += res * res;
    abs += Math.abs(res);
  }
  return { loss: sq / b.n, gradNorm: abs / b.n };
}

/** Applies the batch to `state` in place (checked first with batchProblem). Returns events applied. */
export function applyBatch(c: BanditConfig, state: Float64Array, b: BanditBatch): number {
  const k = c.arms;
  const l = layoutOf(c);
  if (isLinear(c)) {
    const d = c.dims;
    const applied = linucbLearn(state.subarray(l.aInv, l.a), state.subarray(l.a, l.b), state.subarray(l.b, l.n), b.arms.subarray(0, b.n), b.x.subarray(0, b.n * d), b.rewards.subarray(0, b.n));
    for (let e = 0; e < b.n; e++) state[l.n + b.arms[e]!]! += 1;
    return applied;
  }
  if (c.kind === 'thompson' && c.reward === 'bernoulli') {
    for (let e = 0; e < b.n; e++) {
      const a = b.arms[e]!;
      const r = b.rewards[e]!;
      state[a]! += r;
      state[k + a]! += 1 - r;
    }
    return b.n;
  }
  for (let e = 0; e < b.n; e++) {
    const a = b.arms[e]!;
    const r = b.rewards[e]!;
    state[a]! += 1;
    state[k + a]! += r;
    state[2 * k + a]! += r * r;
  }
  return b.n;
}

/** Whether every value of the state is finite (checked after an update, before publishing). */
export function stateFinite(state: Float64Array): boolean {
  for (let i = 0; i < state.length; i++) if (!Number.isFinite(state[i]!)) return false;
  return true;
}

/**
 * Adds another replica's delta (the additive part, layout.ts) to `state`, and rebuilds the
 * linear families' A^-1 = (lambda I + A)^-1 per arm. False if an arm's matrix is not positive
 * definite (the state is then left with the delta added but A^-1 stale: the caller restores).
 */
export function mergeDelta(c: BanditConfig, state: Float64Array, delta: Float64Array): boolean {
  const l = layoutOf(c);
  for (let i = 0; i < delta.length; i++) state[l.additiveFrom + i]! += delta[i]!;
  return isLinear(c) ? rebuildInverse(c, state) : true;
}

/** A^-1 from A for every arm of a linear family (exact again, whatever rank-one drift built up). */
export function rebuildInverse(c: BanditConfig & { lambda: number }, state: Float64Array): boolean {
  const l = layoutOf(c);
  const d = c.dims;
  const m = new Float64Array(d * d);
  for (let a = 0; a < c.arms; a++) {
    m.set(state.subarray(l.a + a * d * d, l.a + (a + 1) * d * d));
    for (let i = 0; i < d; i++) m[i * d + i]! += c.lambda;
    if (!invertSpd(m, state.subarray(l.aInv + a * d * d, l.aInv + (a + 1) * d * d))) return false;
  }
  return true;
}
