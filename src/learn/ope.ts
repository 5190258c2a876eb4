/**
 * Off-policy evaluation: what a candidate policy would have earned on the traffic a logging
 * policy (a bandit) actually served, from the logged decisions and their rewards. Pure, no I/O;
 * the rows come from ope-data.ts.
 *
 * For n logged events (x_i context, a_i action, p_i its logged propensity, r_i reward) and a
 * candidate pi with K arms, w_i = pi(a_i | x_i) / p_i, z = the normal quantile at (1 + level) / 2:
 *
 *   IPS    V = (1/n) sum w_i r_i
 *          se = sd(w r) / sqrt(n)                          (sample sd, n - 1 denominator)
 *   SNIPS  V = sum w_i r_i / sum w_i
 *          se = sqrt( sum (w_i (r_i - V))^2 / (n - 1) / n ) / mean(w)
 *          (delta method for the ratio mean(w r) / mean(w); gradient (1/mean(w), -V/mean(w))
 *          against the sample covariance of (w r, w), written out)
 *   DR     V = (1/n) sum t_i,  t_i = sum_a pi(a | x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i))
 *          se = sd(t) / sqrt(n)
 *   CI     [V - z se, V + z se] for all three.
 *   effective sample size (Kish) = (sum w)^2 / sum w^2; max_weight = max w_i;
 *   logged_value = mean r (what the logging policy earned).
 *
 * q is the direct-method reward model: per arm, a ridge regression of the reward on [1, x]
 * (intercept unpenalised, slopes by `lambda`, default 1), fitted on the same events unless the
 * caller passes one. Where the events lack contexts (not logged) it is the per-arm mean reward;
 * an arm with no events predicts the mean reward of all events.
 *
 * Undefined values are null, never NaN (they go into JSON): SNIPS when no event has a positive
 * weight (the candidate never takes a logged action), every std_error and ci when n < 2.
 *
 * The propensity must be the probability with which the logged action was chosen given the
 * context and the model version: a bandit's arm propensity, which is what a bandit's decision
 * logs, behind a route too (migration 006); evaluate one version's events at a time.
 */
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import { SluiceError } from '../errors.js';
import { RidgeAccumulator } from './ope-ridge.js';

export interface LoggedEvent {
  /** The arm the logging policy chose, 0-based. */
  action: number;
  /** The probability with which it chose it, in (0, 1]. */
  propensity: number;
  reward: number;
  /** The decision's features, when the route logged them. */
  context?: Float32Array;
}

export interface CandidatePolicy {
  readonly arms: number;
  readonly name: string;
  /** Writes the probability of each arm for this context into out (K, sums to 1). */
  probabilities(context: Float32Array | undefined, out: Float64Array): void;
}

export interface RewardModel {
  readonly arms: number;
  /** Writes the predicted reward of each arm for this context into out (K). */
  predict(context: Float32Array | undefined, out: Float64Array): void;
}

export interface Estimate {
  /** null when undefined (SNIPS with no positive weight). */
  value: number | null;
  /** null when n < 2 or the value is undefined. */
  std_error: number | null;
  ci: [number, number] | null;
}

export interface OpeReport {
  n: number;
  policy: string;
  level: number;
  ips: Estimate;
  snips: Estimate;
  dr: Estimate;
  effective_sample_size: number;
  max_weight: number;
  logged_value: number;
}

/** How far a policy's probabilities may sum from 1 (they are computed in floating point). */
const SUM_TOLERANCE = 1e-6;

function invalid(message: string): SluiceError {
  return new SluiceError('OPE_INVALID', message);
}

function checkArms(arms: number): void {
  if (!Number.isInteger(arms) || arms < 1) throw invalid(`arms must be an integer >= 1, not ${arms}`);
}

export function uniformPolicy(arms: number): CandidatePolicy {
  checkArms(arms);
  return { arms, name: 'uniform', probabilities: (_x, out) => out.fill(1 / arms) };
}

export function fixedArmPolicy(arms: number, arm: number): CandidatePolicy {
  checkArms(arms);
  if (!Number.isInteger(arm) || arm < 0 || arm >= arms) throw invalid(`arm must be an integer in [0, ${arms - 1}], not ${arm}`);
  return {
    arms,
    name: `arm:${arm}`,
    probabilities: (_x, out) => {
      out.fill(0);
      out[arm] = 1;
    },
  };
}

/**
 * Checks every event against K arms and returns the context length the reward model can use:
 * d when every event has a context of length d, 0 when any lacks one.
 */
function checkEvents(events: readonly LoggedEvent[], arms: number): number {
  if (events.length === 0) throw new SluiceError('NO_LOGGED_EVENTS', 'no logged events to evaluate on');
  let dim: number | undefined;
  let allHaveContext = true;
  events.forEach((e, i) => {
    if (!Number.isInteger(e.action) || e.action < 0 || e.action >= arms) throw invalid(`event ${i}: action ${e.action} is not an arm in [0, ${arms - 1}]`);
    if (!(e.propensity > 0 && e.propensity <= 1)) throw invalid(`event ${i}: propensity ${e.propensity} is outside (0, 1]`);
    if (!Number.isFinite(e.reward)) throw invalid(`event ${i}: reward ${e.reward} is not finite`);
    if (e.context === undefined) {
      allHaveContext = false;
      return;
    }
    if (dim === undefined) dim = e.context.length;
    else if (e.context.length !== dim) throw invalid(`event ${i}: context has ${e.context.length} values, earlier ones ${dim}`);
    if (!e.context.every(Number.isFinite)) throw invalid(`event ${i}: context has a non-finite value`);
  });
  return allHaveContext ? (dim ?? 0) : 0;
}

/** The direct method: per-arm ridge regression of the reward on the context (see the header). */
export function fitRewardModel(events: readonly LoggedEvent[], arms: number, opts: { lambda?: number } = {}): RewardModel {
  checkArms(arms);
  const lambda = opts.lambda ?? 1;
  if (!(lambda > 0 && Number.isFinite(lambda))) throw invalid(`lambda must be a finite number > 0, not ${lambda}`);
  const dim = checkEvents(events, arms);
  const perArm = Array.from({ length: arms }, () => new RidgeAccumulator(dim));
  let total = 0;
  for (const e of events) {
    perArm[e.action]!.add(dim > 0 ? e.context : undefined, e.reward);
    total += e.reward;
  }
  const mean = total / events.length;
  const coef = perArm.map((acc) => (acc.count > 0 ? acc.solve(lambda) : Float64Array.of(mean, ...new Array<number>(dim).fill(0))));
  return {
    arms,
    predict(context, out) {
      if (dim > 0 && context?.length !== dim) throw invalid(`the reward model needs a context of ${dim} values`);
      for (let a = 0; a < arms; a++) {
        const c = coef[a]!;
        let q = c[0]!;
        for (let j = 0; j < dim; j++) q += c[j + 1]! * context![j]!;
        out[a] = q;
      }
    },
  };
}

/** Mean and standard error (sample sd / sqrt(n), null when n < 2) of `t`. */
function meanAndStdError(t: Float64Array): { mean: number; se: number | null } {
  const n = t.length;
  let sum = 0;
  for (const v of t) sum += v;
  const mean = sum / n;
  if (n < 2) return { mean, se: null };
  let ss = 0;
  for (const v of t) ss += (v - mean) ** 2;
  return { mean, se: Math.sqrt(ss / (n - 1) / n) };
}

function estimate(value: number | null, se: number | null, z: number): Estimate {
  if (value === null || se === null) return { value, std_error: null, ci: null };
  return { value, std_error: se, ci: [value - z * se, value + z * se] };
}

export function evaluatePolicy(
  events: readonly LoggedEvent[],
  policy: CandidatePolicy,
  opts: { rewardModel?: RewardModel; level?: number } = {},
): OpeReport {
  const level = opts.level ?? 0.95;
  if (!(level > 0 && level < 1)) throw invalid(`level must be in (0, 1), not ${level}`);
  const k = policy.arms;
  checkArms(k);
  checkEvents(events, k);
  const model = opts.rewardModel ?? fitRewardModel(events, k);
  if (model.arms !== k) throw invalid(`the reward model has ${model.arms} arms, the policy ${k}`);

  const n = events.length;
  const pi = new Float64Array(k);
  const q = new Float64Array(k);
  const w = new Float64Array(n);
  const wr = new Float64Array(n);
  const dr = new Float64Array(n);
  let rewardSum = 0;
  for (let i = 0; i < n; i++) {
    const e = events[i]!;
    pi.fill(NaN); // a policy that leaves an arm unwritten fails the check below
    policy.probabilities(e.context, pi);
    let total = 0;
    for (const p of pi) {
      if (!(p >= 0 && p <= 1)) throw invalid(`policy ${policy.name} gave a probability ${p} (event ${i})`);
      total += p;
    }
    if (Math.abs(total - 1) > SUM_TOLERANCE) throw invalid(`policy ${policy.name}'s probabilities sum to ${total} (event ${i})`);
    model.predict(e.context, q);
    let direct = 0;
    for (let a = 0; a < k; a++) direct += pi[a]! * q[a]!;
    if (!Number.isFinite(direct)) throw invalid(`the reward model predicted a non-finite reward (event ${i})`);
    w[i] = pi[e.action]! / e.propensity;
    wr[i] = w[i]! * e.reward;
    dr[i] = direct + w[i]! * (e.reward - q[e.action]!);
    rewardSum += e.reward;
  }

  const z = normalQuantile((1 + level) / 2, 0, 1);
  const ips = meanAndStdError(wr);
  const drStats = meanAndStdError(dr);
  let wSum = 0;
  let w2Sum = 0;
  let maxWeight = 0;
  for (const v of w) {
    wSum += v;
    w2Sum += v * v;
    if (v > maxWeight) maxWeight = v;
  }
  return {
    n,
    policy: policy.name,
    level,
    ips: estimate(ips.mean, ips.se, z),
    snips: snips(w, wr, wSum, z, events),
    dr: estimate(drStats.mean, drStats.se, z),
    effective_sample_size: w2Sum > 0 ? (wSum * wSum) / w2Sum : 0,
    max_weight: maxWeight,
    logged_value: rewardSum / n,
  };
}

/** SNIPS and its delta-method standard error (see the header). */
function snips(w: Float64Array, wr: Float64Array, wSum: number, z: number, events: readonly LoggedEvent[]): Estimate {
  const n = w.length;
  if (!(wSum > 0)) return { value: null, std_error: null, ci: null };
  let wrSum = 0;
  for (const v of wr) wrSum += v;
  const value = wrSum / wSum;
  if (n < 2) return estimate(value, null, z);
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (w[i]! * (events[i]!.reward - value)) ** 2;
  return estimate(value, Math.sqrt(ss / (n - 1) / n) / (wSum / n), z);
}
