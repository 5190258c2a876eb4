/**
 * What a bandit model version is, read once from its manifest: the kind, its arms and context
 * size (from the signature), and its parameters (snake_case, in `parameters` of model.json):
 *
 *   every kind   min_propensity (0)   a floor on every arm's probability (K * floor < 1)
 *                seed                 base of the per-thread random streams (default: random)
 *                learning             {"batch_size": 256, "interval_ms": 100} for the online learner
 *                stability            the stability monitor's settings (src/learn/stability.ts)
 *   linucb       alpha (1), lambda (1)                       UCB width and ridge prior
 *   thompson     reward: "bernoulli" (default) | "gaussian" | "linear"
 *                  bernoulli: prior_alpha (1), prior_beta (1); rewards in [0, 1]
 *                  gaussian:  prior_mean (0), prior_count (1), noise_sd (estimated when absent)
 *                  linear:    lambda (1), v (1): theta ~ N(A^-1 b, v^2 A^-1) per arm
 *                propensity_draws: Monte Carlo rounds estimating the chosen arm's probability
 *                  (2000 context-free, once per published state; 100 linear, per decision)
 *   epsilon-greedy  epsilon: a number, or {"type": "constant" | "inverse" | "exponential",
 *                  "epsilon", "min_epsilon", "scale" (inverse), "half_life" (exponential)};
 *                  lambda (1) for the per-arm ridge estimates it is greedy on.
 *
 * The signature is fixed: one FP32 input [-1, d] (the context), outputs `action` INT32 [-1, 1],
 * `propensity` FP32 [-1, 1] and `scores` FP32 [-1, K], in that order.
 */
import { SluiceError } from '../../errors.js';
import type { Manifest } from '../../model/manifest.js';
import { parseStabilityOptions } from '../stability.js';

export const BANDIT_KINDS = ['linucb', 'thompson', 'epsilon-greedy'] as const;
export type BanditKind = (typeof BANDIT_KINDS)[number];

export type EpsilonSchedule =
  | { type: 'constant'; epsilon: number }
  | { type: 'inverse'; epsilon: number; minEpsilon: number; scale: number }
  | { type: 'exponential'; epsilon: number; minEpsilon: number; halfLife: number };

export interface LearningConfig {
  /** Most feedback events per update. */
  batchSize: number;
  /** Longest a received event waits before an update includes it. */
  intervalMs: number;
}

interface Common {
  arms: number;
  /** Context features per row. */
  dims: number;
  minPropensity: number;
  seed: number | undefined;
  learning: LearningConfig;
}

export type BanditConfig = Common & (
  | { kind: 'linucb'; alpha: number; lambda: number }
  | { kind: 'thompson'; reward: 'bernoulli'; priorAlpha: number; priorBeta: number; draws: number }
  | { kind: 'thompson'; reward: 'gaussian'; priorMean: number; priorCount: number; noiseSd: number | undefined; draws: number }
  | { kind: 'thompson'; reward: 'linear'; lambda: number; v: number; draws: number }
  | { kind: 'epsilon-greedy'; epsilon: EpsilonSchedule; lambda: number }
);

/** The linear families keep per-arm A^-1, A, b: LinUCB, linear Thompson, epsilon-greedy. */
export function isLinear(c: BanditConfig): c is BanditConfig & { lambda: number } {
  return c.kind === 'linucb' || c.kind === 'epsilon-greedy' || (c.kind === 'thompson' && c.reward === 'linear');
}

/** Kinds whose state an online learner publishes (bandits and online logistic regression). */
export function isLearnedKind(kind: string): boolean {
  return isBanditKind(kind) || kind === 'online-logistic';
}

export function isBanditKind(kind: string): kind is BanditKind {
  return (BANDIT_KINDS as readonly string[]).includes(kind);
}

const COMMON_FIELDS = ['min_propensity', 'seed', 'learning', 'stability'];
const KIND_FIELDS: Record<string, string[]> = {
  linucb: ['alpha', 'lambda'],
  'thompson:bernoulli': ['reward', 'prior_alpha', 'prior_beta', 'propensity_draws'],
  'thompson:gaussian': ['reward', 'prior_mean', 'prior_count', 'noise_sd', 'propensity_draws'],
  'thompson:linear': ['reward', 'lambda', 'v', 'propensity_draws'],
  'epsilon-greedy': ['epsilon', 'lambda'],
};

/** Largest context and arm counts: A^-1 and A are K * d * d doubles each, copied per update. */
export const MAX_DIMS = 1024;
export const MAX_ARMS = 256;

function bad(m: Manifest, what: string): SluiceError {
  return new SluiceError('MANIFEST_INVALID', `${m.name}@${m.version}: ${what}`);
}

function num(m: Manifest, p: Record<string, unknown>, key: string, dflt: number, ok: (v: number) => boolean, rule: string): number {
  const v = Object.hasOwn(p, key) ? p[key] : undefined;
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw bad(m, `parameters.${key} must be ${rule}`);
  return v;
}

function record(m: Manifest, v: unknown, where: string, known: string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(m, `${where} must be an object`);
  for (const k of Object.keys(v)) if (!known.includes(k)) throw bad(m, `${where} has an unknown field ${JSON.stringify(k.slice(0, 64))} (known: ${known.join(', ')})`);
  return v as Record<string, unknown>;
}

/** Checks the fixed bandit signature; returns d and K. */
function banditSignature(m: Manifest): { dims: number; arms: number } {
  const { inputs, outputs } = m.signature;
  const x = inputs[0];
  if (inputs.length !== 1 || !x || x.datatype !== 'FP32' || x.shape.length !== 2 || x.shape[0] !== -1 || !(x.shape[1]! > 0)) {
    throw bad(m, `${m.kind} models take one FP32 input [-1, d] (the context)`);
  }
  const want = [['action', 'INT32', 1], ['propensity', 'FP32', 1], ['scores', 'FP32', -1]] as const;
  const fits = outputs.length === 3 && want.every(([name, dt, width], i) => {
    const o = outputs[i]!;
    return o.name === name && o.datatype === dt && o.shape.length === 2 && o.shape[0] === -1 && (width === -1 ? o.shape[1]! > 0 : o.shape[1] === width);
  });
  if (!fits) throw bad(m, `${m.kind} models give outputs action INT32 [-1, 1], propensity FP32 [-1, 1], scores FP32 [-1, K], in that order`);
  if (m.batching.maxBatchSize < 1) throw bad(m, `${m.kind} models decide per row: max_batch_size must be at least 1`);
  const dims = x.shape[1]!;
  const arms = outputs[2]!.shape[1]!;
  if (dims > MAX_DIMS) throw bad(m, `at most ${MAX_DIMS} context features`);
  if (arms < 2 || arms > MAX_ARMS) throw bad(m, `2 to ${MAX_ARMS} arms (the width of scores)`);
  return { dims, arms };
}

export function parseLearning(m: Manifest, v: unknown): LearningConfig {
  if (v === undefined) return { batchSize: 256, intervalMs: 100 };
  const o = record(m, v, 'parameters.learning', ['batch_size', 'interval_ms']);
  return {
    batchSize: num(m, o, 'batch_size', 256, (n) => Number.isInteger(n) && n >= 1 && n <= 65536, 'an integer in [1, 65536]'),
    intervalMs: num(m, o, 'interval_ms', 100, (n) => n >= 1 && n <= 3_600_000, 'a number of milliseconds in [1, 3600000]'),
  };
}

function parseEpsilon(m: Manifest, v: unknown, arms: number, floor: number): EpsilonSchedule {
  const min = arms * floor;
  const prob = (n: number) => n >= 0 && n <= 1;
  if (v === undefined || typeof v === 'number') {
    const epsilon = num(m, { epsilon: v }, 'epsilon', 0.1, prob, 'a probability in [0, 1]');
    return { type: 'constant', epsilon: Math.max(epsilon, min) };
  }
  const o = record(m, v, 'parameters.epsilon', ['type', 'epsilon', 'min_epsilon', 'scale', 'half_life']);
  const epsilon = num(m, o, 'epsilon', 0.1, prob, 'a probability in [0, 1]');
  const minEpsilon = Math.max(min, num(m, o, 'min_epsilon', 0, prob, 'a probability in [0, 1]'));
  switch (o.type) {
    case 'constant':
      return { type: 'constant', epsilon: Math.max(epsilon, min) };
    case 'inverse':
      return { type: 'inverse', epsilon, minEpsilon, scale: num(m, o, 'scale', 1000, (n) => n > 0, 'a number > 0 (events)') };
    case 'exponential':
      return { type: 'exponential', epsilon, minEpsilon, halfLife: num(m, o, 'half_life', 1000, (n) => n > 0, 'a number > 0 (events)') };
    default:
      throw bad(m, 'parameters.epsilon.type must be "constant", "inverse" or "exponential"');
  }
}

/** Epsilon after `t` feedback events (the whole fleet's: t is part of the learned state). */
export function epsilonAt(s: EpsilonSchedule, t: number): number {
  switch (s.type) {
    case 'constant':
      return s.epsilon;
    case 'inverse':
      return Math.max(s.minEpsilon, (s.epsilon * s.scale) / (s.scale + t));
    case 'exponential':
      return Math.max(s.minEpsilon, s.epsilon * 0.5 ** (t / s.halfLife));
  }
}

/** Reads and checks a bandit manifest's configuration. Throws MANIFEST_INVALID. */
export function parseBanditConfig(m: Manifest): BanditConfig {
  if (!isBanditKind(m.kind)) throw bad(m, `${m.kind} is not a bandit kind`);
  const { dims, arms } = banditSignature(m);
  const p = m.parameters;
  const reward = m.kind === 'thompson' ? (p.reward ?? 'bernoulli') : undefined;
  if (reward !== undefined && reward !== 'bernoulli' && reward !== 'gaussian' && reward !== 'linear') {
    throw bad(m, 'parameters.reward must be "bernoulli", "gaussian" or "linear"');
  }
  const known = [...COMMON_FIELDS, ...KIND_FIELDS[reward ? `thompson:${reward}` : m.kind]!];
  record(m, p, 'parameters', known);
  const minPropensity = num(m, p, 'min_propensity', 0, (n) => n >= 0 && n * arms < 1, `a probability with min_propensity * ${arms} arms < 1`);
  const seedV = Object.hasOwn(p, 'seed') ? p.seed : undefined;
  if (seedV !== undefined && !(Number.isSafeInteger(seedV) && (seedV as number) >= 0)) throw bad(m, 'parameters.seed must be a non-negative integer');
  // Checked here so that a bad one is refused at registration (the learner builds the monitor).
  try {
    parseStabilityOptions(p.stability);
  } catch (e) {
    throw bad(m, (e as Error).message);
  }
  const common: Common = { arms, dims, minPropensity, seed: seedV as number | undefined, learning: parseLearning(m, p.learning) };
  const positive = (key: string, dflt: number) => num(m, p, key, dflt, (n) => n > 0, 'a number > 0');
  const draws = () => num(m, p, 'propensity_draws', reward === 'linear' ? 100 : 2000, (n) => Number.isInteger(n) && n >= 1 && n <= 100_000, 'an integer in [1, 100000]');
  switch (m.kind) {
    case 'linucb':
      return { ...common, kind: 'linucb', alpha: num(m, p, 'alpha', 1, (n) => n >= 0, 'a number >= 0'), lambda: positive('lambda', 1) };
    case 'epsilon-greedy':
      return { ...common, kind: 'epsilon-greedy', epsilon: parseEpsilon(m, p.epsilon, arms, minPropensity), lambda: positive('lambda', 1) };
    case 'thompson':
      if (reward === 'gaussian') {
        const noise = Object.hasOwn(p, 'noise_sd') ? positive('noise_sd', 1) : undefined;
        return { ...common, kind: 'thompson', reward, priorMean: num(m, p, 'prior_mean', 0, () => true, 'a finite number'), priorCount: positive('prior_count', 1), noiseSd: noise, draws: draws() };
      }
      if (reward === 'linear') return { ...common, kind: 'thompson', reward, lambda: positive('lambda', 1), v: positive('v', 1), draws: draws() };
      return { ...common, kind: 'thompson', reward: 'bernoulli', priorAlpha: positive('prior_alpha', 1), priorBeta: positive('prior_beta', 1), draws: draws() };
  }
}
