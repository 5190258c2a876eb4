/**
 * A bandit's decision for each row of contexts, from a published state (layout.ts): the arm,
 * the probability the policy had of choosing it, and per-arm scores. Runs on the request path of
 * every I/O thread; the arithmetic over the state is in the native kernels.
 *
 * Propensities:
 * - LinUCB is greedy on mean + alpha * width: probability 1 for its arm;
 * - epsilon-greedy: epsilon / K for every arm plus 1 - epsilon for the greedy one, exact, with
 *   epsilon from its schedule at the state's event count;
 * - Thompson sampling: the probability that the chosen arm's posterior draw is the largest has no
 *   closed form; it is estimated from `propensity_draws` further draws, counting the one that
 *   chose it (so never 0): (wins + 1) / (draws + 1). Context-free posteriors (Bernoulli,
 *   Gaussian) are the same for every request until the state changes: their estimate is made
 *   once per published state (a `stateKey`), so a decision costs one draw per arm.
 * A floor f (`min_propensity`) mixes in uniform choice: with probability K * f any arm, so that
 * every arm keeps probability >= f; the propensity logged is f + (1 - K f) * p(arm). Epsilon-
 * greedy needs no mixing: its epsilon is at least K * f (config.ts).
 */
import { threadId } from 'node:worker_threads';
import { createRng, linearArmStats, linearServingForm, linearServingFormLength, linearServingStats, type Rng } from '../../native.js';
import { epsilonAt, isLinear, type BanditConfig } from './config.js';
import { layoutOf, type Layout } from './layout.js';

export interface DecisionOutputs {
  action: Int32Array;
  propensity: Float32Array;
  scores: Float32Array;
}

/** A random stream per thread: seeded streams differ by thread, and repeat run to run. */
export function banditRng(c: BanditConfig): Rng {
  const seed = c.seed === undefined ? Math.floor(Math.random() * 2 ** 52) : (c.seed + threadId * 7919) % 2 ** 52;
  return createRng(seed);
}

export class BanditPolicy {
  private readonly layout: Layout;
  private means: Float64Array;
  private widths: Float64Array;
  private readonly sds: Float64Array;
  private readonly probs: Float64Array;
  private readonly alphas: Float64Array;
  private readonly betas: Float64Array;
  private readonly draws: number;
  /** Probability of uniform choice (K * floor). */
  private readonly mix: number;

  constructor(readonly config: BanditConfig, private readonly rng: Rng, maxRows = 1) {
    this.layout = layoutOf(config);
    const k = config.arms;
    this.means = new Float64Array(maxRows * k);
    this.widths = new Float64Array(maxRows * k);
    this.sds = new Float64Array(k);
    this.probs = new Float64Array(k);
    this.alphas = new Float64Array(k);
    this.betas = new Float64Array(k);
    this.draws = config.kind === 'thompson' ? config.draws : 0;
    this.mix = config.kind === 'epsilon-greedy' ? 0 : k * config.minPropensity;
  }

  /**
   * Decides every row of `x` (rows x d) from `state` into `out` (rows long, scores rows x K).
   * `stateKey` names the state (its update count): context-free Thompson estimates its arm
   * probabilities once per key. `formKey` names this exact publication of the state (never
   * the same for two different contents): the linear families then build the state's serving
   * form once per key and decide from it (see `armStats`).
   */
  decide(state: Float64Array, x: Float32Array, rows: number, out: DecisionOutputs, stateKey?: number, formKey?: number): void {
    const c = this.config;
    const k = c.arms;
    if (isLinear(c)) this.armStats(state, x, rows, formKey);
    else this.posteriors(state, stateKey);
    const eps = c.kind === 'epsilon-greedy' ? epsilonAt(c.epsilon, this.total(state)) : 0;
    for (let r = 0; r < rows; r++) {
      const m = r * k;
      let arm: number;
      let p: number;
      if (c.kind === 'epsilon-greedy') {
        const greedy = argmax(this.means, m, k);
        arm = this.rng.nextF64() < eps ? Math.min(k - 1, Math.floor(this.rng.nextF64() * k)) : greedy;
        p = eps / k + (arm === greedy ? 1 - eps : 0);
        for (let i = 0; i < k; i++) out.scores[m + i] = this.means[m + i]!;
      } else if (c.kind === 'linucb') {
        for (let i = 0; i < k; i++) out.scores[m + i] = this.means[m + i]! + c.alpha * this.widths[m + i]!;
        const best = argmax(out.scores, m, k);
        arm = this.mixed(best);
        p = arm === best ? 1 : 0;
      } else {
        // Context-free posteriors are the same for every row (computed once, at 0).
        const s = isLinear(c) ? m : 0;
        const best = this.thompson(s, stateKey);
        for (let i = 0; i < k; i++) out.scores[m + i] = this.means[s + i]!;
        arm = this.mixed(best);
        // The draw that chose `best` counts among the rounds; another arm (uniform mixing) has
        // only the further rounds.
        p = arm === best ? (this.probs[arm]! * this.draws + 1) / (this.draws + 1) : this.probs[arm]!;
      }
      out.action[r] = arm;
      out.propensity[r] = this.mix > 0 ? this.mix / k + (1 - this.mix) * p : p;
    }
  }

  /**
   * The probability of each arm for one context (K into `out`), as `decide` would choose: exact
   * for LinUCB and epsilon-greedy, estimated from draws for Thompson sampling. For off-policy
   * evaluation of this version as a candidate.
   */
  probabilities(state: Float64Array, x: Float32Array, out: Float64Array): void {
    const c = this.config;
    const k = c.arms;
    if (isLinear(c)) this.armStats(state, x, 1);
    else this.posteriors(state);
    out.fill(0);
    if (c.kind === 'epsilon-greedy') {
      const eps = epsilonAt(c.epsilon, this.total(state));
      out.fill(eps / k);
      out[argmax(this.means, 0, k)]! += 1 - eps;
      return;
    }
    if (c.kind === 'linucb') {
      let best = 0;
      for (let i = 1; i < k; i++) if (this.means[i]! + c.alpha * this.widths[i]! > this.means[best]! + c.alpha * this.widths[best]!) best = i;
      out[best] = 1;
    } else {
      this.thompson(0);
      out.set(this.probs);
    }
    if (this.mix > 0) for (let i = 0; i < k; i++) out[i] = this.mix / k + (1 - this.mix) * out[i]!;
  }

  private mixed(best: number): number {
    if (this.mix === 0 || this.rng.nextF64() >= this.mix) return best;
    return Math.min(this.config.arms - 1, Math.floor(this.rng.nextF64() * this.config.arms));
  }

  /** Feedback events in the state (the epsilon schedule's clock). */
  private total(state: Float64Array): number {
    let t = 0;
    for (let i = 0; i < this.config.arms; i++) t += state[this.layout.n + i]!;
    return t;
  }

  /**
   * Per row and arm, mean and width. With a `formKey` (the request path, deciding from one
   * published state many times), from the state's serving form: A^-1 b, A^-1's diagonal and its
   * upper triangle in f32, built when the key changes; a decision then reads under a third of
   * the bytes (5 arms x 100 features: 124 KB instead of 400 KB of A^-1, `npm run bench --
   * bandits`). Without one (simulations, evaluation), straight from the state, in f64.
   */
  private armStats(state: Float64Array, x: Float32Array, rows: number, formKey?: number): void {
    const k = this.config.arms;
    if (this.means.length < rows * k) {
      this.means = new Float64Array(rows * k);
      this.widths = new Float64Array(rows * k);
    }
    const l = this.layout;
    const d = this.config.dims;
    const means = this.means.subarray(0, rows * k);
    const widths = this.widths.subarray(0, rows * k);
    const aInv = state.subarray(l.aInv, l.aInv + k * d * d);
    const b = state.subarray(l.b, l.b + k * d);
    if (formKey === undefined) {
      linearArmStats(aInv, b, x.subarray(0, rows * d), rows, means, widths);
      return;
    }
    if (formKey !== this.formKey) {
      this.formKey = undefined;
      this.form ??= new Float64Array(linearServingFormLength(k, d));
      linearServingForm(aInv, b, this.form);
      this.formKey = formKey;
    }
    linearServingStats(this.form!, x.subarray(0, rows * d), rows, means, widths);
  }

  /** The serving form of the publication named `formKey` (linear families on the request path). */
  private form: Float64Array | undefined;
  private formKey: number | undefined;

  /** Context-free Thompson: posterior parameters per arm into alphas/betas or means/sds. */
  private posteriors(state: Float64Array, stateKey?: number): void {
    const c = this.config;
    const k = c.arms;
    if (c.kind !== 'thompson') return;
    if (stateKey !== undefined && stateKey === this.probsKey) return;
    this.probsKey = undefined;
    if (c.reward === 'bernoulli') {
      for (let i = 0; i < k; i++) {
        this.alphas[i] = c.priorAlpha + state[i]!;
        this.betas[i] = c.priorBeta + state[k + i]!;
        this.means[i] = this.alphas[i]! / (this.alphas[i]! + this.betas[i]!);
      }
      return;
    }
    if (c.reward === 'gaussian') {
      const sd = c.noiseSd ?? pooledSd(state, k);
      for (let i = 0; i < k; i++) {
        const n = state[i]!;
        this.means[i] = (c.priorCount * c.priorMean + state[k + i]!) / (c.priorCount + n);
        this.sds[i] = sd / Math.sqrt(c.priorCount + n);
      }
    }
  }

  /**
   * One Thompson draw per arm (row `m` of the stats): the winner; probs gets each arm's
   * estimate (context-free posteriors: once per state key, see decide).
   */
  private thompson(m: number, stateKey?: number): number {
    const c = this.config;
    if (c.kind !== 'thompson') throw new Error('not a Thompson bandit');
    if (c.reward !== 'linear') {
      const cached = stateKey !== undefined && stateKey === this.probsKey;
      const draws = cached ? 0 : this.draws;
      const arm = c.reward === 'bernoulli'
        ? this.rng.thompsonBeta(this.alphas, this.betas, draws, this.probs)
        : this.rng.thompsonNormal(this.means.subarray(0, c.arms), this.sds, draws, this.probs);
      if (stateKey !== undefined) this.probsKey = stateKey;
      return arm;
    }
    const k = c.arms;
    const means = m === 0 ? this.means.subarray(0, k) : this.means.subarray(m, m + k);
    if (c.reward === 'linear') {
      for (let i = 0; i < k; i++) this.sds[i] = c.v * this.widths[m + i]!;
    }
    return this.rng.thompsonNormal(means, this.sds, this.draws, this.probs);
  }

  /** The state key whose arm probabilities `probs` holds (context-free Thompson). */
  private probsKey: number | undefined;
}

/** Ties go to the lowest index (the same rule as the native kernels). */
function argmax(a: Float32Array | Float64Array, from: number, k: number): number {
  let best = 0;
  for (let i = 1; i < k; i++) if (a[from + i]! > a[from + best]!) best = i;
  return best;
}

/** The rewards' standard deviation pooled over arms (1 until two arms have two observations). */
function pooledSd(state: Float64Array, k: number): number {
  let ss = 0;
  let df = 0;
  for (let i = 0; i < k; i++) {
    const n = state[i]!;
    if (n < 2) continue;
    const sum = state[k + i]!;
    ss += state[2 * k + i]! - (sum * sum) / n;
    df += n - 1;
  }
  return df >= 2 && ss > 0 ? Math.max(1e-3, Math.sqrt(ss / df)) : 1;
}
