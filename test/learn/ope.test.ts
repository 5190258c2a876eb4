/**
 * Off-policy evaluation (src/learn/ope.ts): IPS, SNIPS and DR against a hand computation on 3
 * events, against numpy/scipy on 40 (test/fixtures/stats/ope-reference.json, written by
 * scripts/stats/ope_reference.py), degenerate inputs, and every refusal code.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { evaluatePolicy, fitRewardModel, fixedArmPolicy, uniformPolicy, type CandidatePolicy, type Estimate, type LoggedEvent, type OpeReport } from '../../src/learn/ope.js';
import { projectRoot } from '../../src/paths.js';

const Z95 = 1.959963984540054; // scipy.stats.norm.ppf(0.975)

function close(actual: number | null | undefined, expected: number, what: string, rel = 1e-9): void {
  expect(actual, what).not.toBeNull();
  expect(Math.abs(actual! - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(rel * Math.max(Math.abs(expected), 1e-12));
}

function closeEstimate(e: Estimate, value: number, se: number, z: number, what: string, rel = 1e-9): void {
  close(e.value, value, `${what} value`, rel);
  close(e.std_error, se, `${what} std_error`, rel);
  close(e.ci?.[0], value - z * se, `${what} ci low`, rel);
  close(e.ci?.[1], value + z * se, `${what} ci high`, rel);
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SluiceError);
    return (e as SluiceError).code;
  }
  return 'no error';
}

describe('off-policy estimates by hand (3 events, 2 arms, no contexts)', () => {
  const events: LoggedEvent[] = [
    { action: 0, propensity: 0.5, reward: 1 },
    { action: 1, propensity: 0.25, reward: 0 },
    { action: 0, propensity: 0.8, reward: 2 },
  ];
  // Reward model without contexts = per-arm mean: q(0) = (1 + 2) / 2 = 1.5, q(1) = 0.

  it('fixed arm 0', () => {
    const r = evaluatePolicy(events, fixedArmPolicy(2, 0));
    // w = [1/0.5, 0, 1/0.8] = [2, 0, 1.25]; w r = [2, 0, 2.5]
    // IPS = 4.5 / 3 = 1.5; deviations 0.5, -1.5, 1 -> ss 3.5, var 1.75, se = sqrt(1.75 / 3)
    closeEstimate(r.ips, 1.5, Math.sqrt(1.75 / 3), Z95, 'ips');
    // SNIPS = 4.5 / 3.25 = 18/13; w (r - V) = [-10/13, 0, 10/13] -> ss 200/169,
    // se = sqrt(200/169 / 2 / 3) / (3.25 / 3) = 120 / (13 sqrt(507))
    closeEstimate(r.snips, 18 / 13, 120 / (13 * Math.sqrt(507)), Z95, 'snips');
    // DR terms: 1.5 + 2 (1 - 1.5) = 0.5; 1.5 + 0 = 1.5; 1.5 + 1.25 (2 - 1.5) = 2.125
    // mean 4.125 / 3 = 1.375; deviations -0.875, 0.125, 0.75 -> ss 1.34375, se = sqrt(0.671875 / 3)
    closeEstimate(r.dr, 1.375, Math.sqrt(0.671875 / 3), Z95, 'dr');
    // ESS = 3.25^2 / (4 + 0 + 1.5625)
    close(r.effective_sample_size, 10.5625 / 5.5625, 'ess');
    expect(r.max_weight).toBe(2);
    expect(r.logged_value).toBe(1);
    expect(r.n).toBe(3);
    expect(r.policy).toBe('arm:0');
    expect(r.level).toBe(0.95);
  });

  it('uniform over 2 arms', () => {
    const r = evaluatePolicy(events, uniformPolicy(2));
    // w = [0.5/0.5, 0.5/0.25, 0.5/0.8] = [1, 2, 0.625]; w r = [1, 0, 1.25]
    // IPS = 2.25 / 3 = 0.75; deviations 0.25, -0.75, 0.5 -> ss 0.875
    closeEstimate(r.ips, 0.75, Math.sqrt(0.875 / 2 / 3), Z95, 'ips');
    // SNIPS = 2.25 / 3.625 = 18/29; w (r - V) = [11/29, -36/29, 0.625 * 40/29 = 25/29]
    // ss = (121 + 1296 + 625) / 841 = 2042/841; se = sqrt(2042/841 / 2 / 3) / (3.625 / 3)
    closeEstimate(r.snips, 18 / 29, Math.sqrt(2042 / 841 / 6) / (3.625 / 3), Z95, 'snips');
    // DR: direct = 0.5 * 1.5 + 0.5 * 0 = 0.75; terms 0.75 + 1 (1 - 1.5) = 0.25;
    // 0.75 + 2 (0 - 0) = 0.75; 0.75 + 0.625 (2 - 1.5) = 1.0625 -> mean 2.0625 / 3 = 0.6875
    // deviations -0.4375, 0.0625, 0.375 -> ss 0.19140625 + 0.00390625 + 0.140625 = 0.3359375
    closeEstimate(r.dr, 0.6875, Math.sqrt(0.3359375 / 2 / 3), Z95, 'dr');
  });

  it('takes the interval level', () => {
    const r = evaluatePolicy(events, fixedArmPolicy(2, 0), { level: 0.9 });
    closeEstimate(r.ips, 1.5, Math.sqrt(1.75 / 3), 1.6448536269514722, 'ips'); // norm.ppf(0.95)
    expect(r.level).toBe(0.9);
  });

  it('uses a reward model it is given', () => {
    const zero = { arms: 2, predict: (_x: Float32Array | undefined, out: Float64Array) => out.fill(0) };
    // With q = 0, DR reduces to IPS.
    const r = evaluatePolicy(events, fixedArmPolicy(2, 0), { rewardModel: zero });
    closeEstimate(r.dr, 1.5, Math.sqrt(1.75 / 3), Z95, 'dr');
  });
});

interface Reference {
  arms: number;
  lambda: number;
  events: Array<{ action: number; propensity: number; reward: number; context: number[] }>;
  softmax_policy: { weights: number[][]; bias: number[] };
  reward_model: { contexts: number[][]; no_contexts: number[][] };
  cases: Array<{ policy: string; contexts: boolean; level: number } & Omit<OpeReport, 'policy' | 'level'>>;
}

const ref = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/ope-reference.json'), 'utf8')) as Reference;

function softmaxPolicy(weights: number[][], bias: number[]): CandidatePolicy {
  return {
    arms: weights.length,
    name: 'softmax',
    probabilities(x, out) {
      let max = -Infinity;
      for (let a = 0; a < weights.length; a++) {
        let s = bias[a]!;
        weights[a]!.forEach((w, j) => (s += w * x![j]!));
        out[a] = s;
        max = Math.max(max, s);
      }
      let total = 0;
      for (let a = 0; a < out.length; a++) total += (out[a] = Math.exp(out[a]! - max));
      for (let a = 0; a < out.length; a++) out[a]! /= total;
    },
  };
}

describe('off-policy estimates against numpy/scipy (40 events, 3 arms, 2-dim contexts)', () => {
  const withContexts: LoggedEvent[] = ref.events.map((e) => ({ action: e.action, propensity: e.propensity, reward: e.reward, context: Float32Array.from(e.context) }));
  const withoutContexts: LoggedEvent[] = ref.events.map((e) => ({ action: e.action, propensity: e.propensity, reward: e.reward }));
  const policies: Record<string, CandidatePolicy> = {
    uniform: uniformPolicy(ref.arms),
    'arm:1': fixedArmPolicy(ref.arms, 1),
    softmax: softmaxPolicy(ref.softmax_policy.weights, ref.softmax_policy.bias),
  };

  it('stores contexts that are exact in float32', () => {
    for (const e of ref.events) expect(Array.from(Float32Array.from(e.context))).toEqual(e.context);
  });

  it('fits the same ridge reward model', () => {
    const model = fitRewardModel(withContexts, ref.arms, { lambda: ref.lambda });
    const out = new Float64Array(ref.arms);
    for (const x of [[0, 0], [1, 0], [0, 1], [-0.5, 2]]) {
      model.predict(Float32Array.from(x), out);
      ref.reward_model.contexts.forEach((c, a) => close(out[a], c[0]! + c[1]! * x[0]! + c[2]! * x[1]!, `arm ${a} at ${x}`));
    }
    const means = fitRewardModel(withoutContexts, ref.arms);
    means.predict(undefined, out);
    ref.reward_model.no_contexts.forEach((c, a) => close(out[a], c[0]!, `arm ${a} mean`));
  });

  for (const c of ref.cases) {
    it(`${c.policy}, ${c.contexts ? 'with' : 'without'} contexts, level ${c.level}`, () => {
      const r = evaluatePolicy(c.contexts ? withContexts : withoutContexts, policies[c.policy]!, { level: c.level });
      expect(r.n).toBe(c.n);
      expect(r.policy).toBe(c.policy);
      for (const k of ['ips', 'snips', 'dr'] as const) {
        close(r[k].value, c[k].value!, `${k} value`);
        close(r[k].std_error, c[k].std_error!, `${k} std_error`);
        close(r[k].ci?.[0], c[k].ci![0], `${k} ci low`);
        close(r[k].ci?.[1], c[k].ci![1], `${k} ci high`);
      }
      close(r.effective_sample_size, c.effective_sample_size, 'effective_sample_size');
      close(r.max_weight, c.max_weight, 'max_weight');
      close(r.logged_value, c.logged_value, 'logged_value');
    });
  }

  it('falls back to per-arm means when any context is missing', () => {
    const expected = ref.cases.find((c) => !c.contexts && c.policy === 'uniform')!;
    const oneMissing = withContexts.map((e, i) => (i === 7 ? { ...e, context: undefined } : e));
    close(evaluatePolicy(oneMissing, policies.uniform!).dr.value, expected.dr.value!, 'dr');
  });
});

describe('degenerate inputs', () => {
  it('one event: values without intervals', () => {
    const r = evaluatePolicy([{ action: 1, propensity: 0.5, reward: 3 }], uniformPolicy(2));
    expect(r.ips).toEqual({ value: 3 * (0.5 / 0.5), std_error: null, ci: null });
    expect(r.snips).toEqual({ value: 3, std_error: null, ci: null });
    expect(r.dr.value).toBe(3); // q(1) = 3 from its one event, q(0) = the mean of all events, 3
    expect(r.dr.std_error).toBeNull();
  });

  it('a candidate that never takes a logged action: IPS 0, SNIPS undefined, DR from the model alone', () => {
    const events: LoggedEvent[] = [
      { action: 0, propensity: 0.5, reward: 1 },
      { action: 1, propensity: 0.5, reward: 3 },
    ];
    const r = evaluatePolicy(events, fixedArmPolicy(3, 2));
    expect(r.ips).toEqual({ value: 0, std_error: 0, ci: [0, 0] });
    expect(r.snips).toEqual({ value: null, std_error: null, ci: null });
    // arm 2 has no events: the model predicts the mean of all rewards, 2, for every event
    expect(r.dr).toEqual({ value: 2, std_error: 0, ci: [2, 2] });
    expect(r.effective_sample_size).toBe(0);
    expect(r.max_weight).toBe(0);
  });

  it('the logging policy evaluated on itself: every weight 1, IPS and SNIPS equal the logged mean', () => {
    const events: LoggedEvent[] = [0, 1, 1, 0, 1].map((a, i) => ({ action: a, propensity: 0.5, reward: i }));
    const r = evaluatePolicy(events, uniformPolicy(2));
    expect(r.ips.value).toBe(2);
    expect(r.snips.value).toBe(2);
    expect(r.logged_value).toBe(2);
    // DR: q(0) = mean(0, 3) = 1.5, q(1) = mean(1, 2, 4) = 7/3; the corrections r - q(a) sum to 0,
    // so DR = 0.5 * 1.5 + 0.5 * 7/3 = 23/12
    close(r.dr.value, 23 / 12, 'dr');
    expect(r.effective_sample_size).toBe(5);
  });

  it('a context-dependent policy sees each event\'s context', () => {
    const seen: number[] = [];
    const byContext: CandidatePolicy = {
      arms: 2,
      name: 'sign',
      probabilities: (x, out) => {
        seen.push(x![0]!);
        out[0] = x![0]! > 0 ? 1 : 0;
        out[1] = 1 - out[0];
      },
    };
    const events: LoggedEvent[] = [
      { action: 0, propensity: 0.5, reward: 1, context: Float32Array.of(1) },
      { action: 0, propensity: 0.5, reward: 5, context: Float32Array.of(-1) },
    ];
    // w = [2, 0]: IPS = (2 * 1 + 0) / 2 = 1
    expect(evaluatePolicy(events, byContext).ips.value).toBe(1);
    expect(seen).toEqual([1, -1]);
  });
});

describe('refusals', () => {
  const ok: LoggedEvent = { action: 0, propensity: 0.5, reward: 1 };
  const run = (events: LoggedEvent[], policy: CandidatePolicy = uniformPolicy(2), opts = {}) => code(() => evaluatePolicy(events, policy, opts));

  it('no events', () => {
    expect(run([])).toBe('NO_LOGGED_EVENTS');
    expect(code(() => fitRewardModel([], 2))).toBe('NO_LOGGED_EVENTS');
  });

  it('propensity outside (0, 1]', () => {
    for (const propensity of [0, -0.1, 1.5, NaN, Infinity]) expect(run([ok, { ...ok, propensity }]), String(propensity)).toBe('OPE_INVALID');
    expect(run([{ ...ok, propensity: 1 }])).toBe('no error');
  });

  it('action outside the arms, and rewards that are not finite', () => {
    for (const action of [2, -1, 0.5, NaN]) expect(run([ok, { ...ok, action }]), String(action)).toBe('OPE_INVALID');
    for (const reward of [NaN, Infinity]) expect(run([ok, { ...ok, reward }]), String(reward)).toBe('OPE_INVALID');
  });

  it('contexts of different lengths or with non-finite values', () => {
    expect(run([{ ...ok, context: Float32Array.of(1, 2) }, { ...ok, context: Float32Array.of(1) }])).toBe('OPE_INVALID');
    expect(run([{ ...ok, context: Float32Array.of(NaN) }])).toBe('OPE_INVALID');
  });

  it('a policy whose probabilities are not a distribution over its arms', () => {
    const bad = (fill: (out: Float64Array) => void): CandidatePolicy => ({ arms: 2, name: 'bad', probabilities: (_x, out) => fill(out) });
    expect(run([ok], bad((o) => o.set([0.5, 0.4])))).toBe('OPE_INVALID');
    expect(run([ok], bad((o) => o.set([1.5, -0.5])))).toBe('OPE_INVALID');
    expect(run([ok], bad((o) => (o[0] = 1)))).toBe('OPE_INVALID'); // arm 1 never written
    expect(run([ok], bad((o) => o.set([0.5, 0.5 + 1e-9])))).toBe('no error'); // rounding is fine
    expect(run([ok], { ...uniformPolicy(2), arms: 0 })).toBe('OPE_INVALID');
  });

  it('a reward model with another number of arms, a bad level', () => {
    expect(run([ok], uniformPolicy(2), { rewardModel: fitRewardModel([ok], 3) })).toBe('OPE_INVALID');
    for (const level of [0, 1, 1.5, -0.5, NaN]) expect(run([ok], uniformPolicy(2), { level }), String(level)).toBe('OPE_INVALID');
  });

  it('bad policy and reward model parameters', () => {
    expect(code(() => uniformPolicy(0))).toBe('OPE_INVALID');
    expect(code(() => uniformPolicy(1.5))).toBe('OPE_INVALID');
    expect(code(() => fixedArmPolicy(3, 3))).toBe('OPE_INVALID');
    expect(code(() => fixedArmPolicy(3, -1))).toBe('OPE_INVALID');
    expect(code(() => fitRewardModel([ok], 2, { lambda: 0 }))).toBe('OPE_INVALID');
    const model = fitRewardModel([{ ...ok, context: Float32Array.of(1, 2) }], 2);
    expect(code(() => model.predict(undefined, new Float64Array(2)))).toBe('OPE_INVALID');
    expect(code(() => model.predict(Float32Array.of(1), new Float64Array(2)))).toBe('OPE_INVALID');
  });
});
