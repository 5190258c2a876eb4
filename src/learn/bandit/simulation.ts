/**
 * Seeded bandit environments and an in-process simulation loop: the bandit's own serving policy
 * (policy.ts) decides from the state its own learner (bandit-learner.ts) publishes, and rewards
 * come back as joined feedback, exactly as through a server, minus the sockets. Used by the
 * acceptance tests (regret bounds) and by `npm run bench -- bandits` to print regret tables.
 */
import { parseManifest, type Manifest } from '../../model/manifest.js';
import { BanditLearner, type UpdateJudge } from '../bandit-learner.js';
import type { JoinedFeedback } from '../feedback.js';
import { parseBanditConfig } from './config.js';
import { initialState } from './layout.js';
import { BanditPolicy } from './policy.js';
import { createRng } from '../../native.js';
import { mulberry32 } from '../../random.js';

export { mulberry32 };

function gaussian(u: () => number): number {
  const a = Math.max(u(), 1e-300);
  return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * u());
}

export interface Environment {
  readonly arms: number;
  readonly dims: number;
  /** The next context (dims values). */
  context(into: Float32Array): void;
  /** Expected reward of `arm` in context `x`. */
  mean(x: Float32Array, arm: number): number;
  /** A reward drawn for `arm` in `x`. */
  reward(x: Float32Array, arm: number): number;
}

/** Bernoulli arms with fixed success rates; the context is a constant 1 (context-free). */
export function bernoulliEnv(rates: number[], seed: number): Environment {
  const u = mulberry32(seed);
  return {
    arms: rates.length,
    dims: 1,
    context: (x) => {
      x[0] = 1;
    },
    mean: (_x, a) => rates[a]!,
    reward: (_x, a) => (u() < rates[a]! ? 1 : 0),
  };
}

/**
 * A linear contextual environment: contexts are Gaussian in `dims` dimensions, arm k's expected
 * reward is theta_k . x, rewards add Gaussian noise of `noise` sd. Every arm is best somewhere,
 * so no fixed arm is good everywhere.
 */
export function linearEnv(arms: number, dims: number, noise: number, seed: number): Environment {
  const u = mulberry32(seed);
  const theta = Array.from({ length: arms }, () => Float64Array.from({ length: dims }, () => gaussian(u) / Math.sqrt(dims)));
  return {
    arms,
    dims,
    context: (x) => {
      for (let i = 0; i < dims; i++) x[i] = gaussian(u);
    },
    mean: (x, a) => {
      let s = 0;
      for (let i = 0; i < dims; i++) s += theta[a]![i]! * x[i]!;
      return s;
    },
    reward(x, a) {
      return this.mean(x, a) + noise * gaussian(u);
    },
  };
}

export interface SimulationResult {
  steps: number;
  /** Cumulative expected regret against the best arm per context, at each checkpoint. */
  regret: Array<{ step: number; regret: number }>;
  /** Expected reward collected (sum of means of the chosen arms). */
  reward: number;
  /** Expected reward of choosing uniformly at random, and of the best single arm, on the same contexts. */
  uniform: number;
  bestFixed: number;
  /** Per logged decision: the propensity the policy reported and the arm (for propensity checks). */
  propensities?: Float64Array;
}

/** A manifest for a bandit of `kind` over env (what a user would write in model.json). */
export function banditManifest(kind: string, arms: number, dims: number, parameters: Record<string, unknown>): Manifest {
  return parseManifest({
    name: 'sim',
    version: '1',
    kind,
    max_batch_size: 64,
    signature: {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, dims] }],
      outputs: [
        { name: 'action', datatype: 'INT32', shape: [-1, 1] },
        { name: 'propensity', datatype: 'FP32', shape: [-1, 1] },
        { name: 'scores', datatype: 'FP32', shape: [-1, arms] },
      ],
    },
    payload: { file: 'arms.json', sha256: '0'.repeat(64) },
    parameters,
  });
}

const ACCEPT_ALL: UpdateJudge = { check: () => ({ ok: true }) };

/**
 * Runs `steps` decisions of the bandit `m` against `env`; feedback is applied every `flushEvery`
 * decisions (the learner's mini-batch interval, in decisions). `seed` seeds the policy's stream.
 */
export function simulate(m: Manifest, env: Environment, steps: number, opts: { flushEvery?: number; seed?: number; checkpoints?: number; judge?: UpdateJudge } = {}): SimulationResult {
  const c = parseBanditConfig(m);
  const learner = new BanditLearner(m, opts.judge ?? ACCEPT_ALL, { state: initialState(c), updates: 0, events: 0 });
  const policy = new BanditPolicy(c, createRng(opts.seed ?? 1), 1);
  const flushEvery = opts.flushEvery ?? 10;
  const every = Math.max(1, Math.floor(steps / (opts.checkpoints ?? 20)));
  const out = { action: new Int32Array(1), propensity: new Float32Array(1), scores: new Float32Array(c.arms) };
  const x = new Float32Array(c.dims);
  const armTotals = new Float64Array(c.arms);
  const regret: SimulationResult['regret'] = [];
  let reward = 0;
  let uniform = 0;
  let best = 0;
  for (let t = 1; t <= steps; t++) {
    env.context(x);
    const view = learner.cell.read();
    policy.decide(view.data, x, 1, out, view.state);
    const arm = out.action[0]!;
    let bestMean = -Infinity;
    let meanSum = 0;
    for (let a = 0; a < c.arms; a++) {
      const mu = env.mean(x, a);
      armTotals[a]! += mu;
      meanSum += mu;
      if (mu > bestMean) bestMean = mu;
    }
    const mu = env.mean(x, arm);
    reward += mu;
    uniform += meanSum / c.arms;
    best += bestMean;
    const f: JoinedFeedback = {
      eventId: String(t),
      reward: env.reward(x, arm),
      at: t,
      decision: { eventId: String(t), at: t, model: m.name, variant: '', version: m.version, propensity: out.propensity[0]!, routeGen: 0, features: Float32Array.from(x), action: arm },
    };
    learner.offer(f);
    if (t % flushEvery === 0) learner.flush();
    if (t % every === 0 || t === steps) regret.push({ step: t, regret: best - reward });
  }
  learner.stop();
  return { steps, regret, reward, uniform, bestFixed: Math.max(...armTotals) };
}
