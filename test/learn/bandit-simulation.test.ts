/**
 * Issue #13 acceptance: seeded simulations of the bandit kinds against uniform random and the
 * best fixed arm, through the serving policy and the online learner (src/learn/bandit/).
 */
import { describe, expect, it } from 'vitest';
import { BanditLearner } from '../../src/learn/bandit-learner.js';
import { parseBanditConfig } from '../../src/learn/bandit/config.js';
import { initialState } from '../../src/learn/bandit/layout.js';
import { BanditPolicy } from '../../src/learn/bandit/policy.js';
import { banditManifest, bernoulliEnv, linearEnv, simulate } from '../../src/learn/bandit/simulation.js';
import { createRng } from '../../src/native.js';

/** Bernoulli KL divergence KL(p || q). */
function kl(p: number, q: number): number {
  const t = (a: number, b: number) => (a === 0 ? 0 : a * Math.log(a / b));
  return t(p, q) + t(1 - p, 1 - q);
}

/** The Lai-Robbins constant: regret >= (sum over suboptimal arms of gap / KL) * ln T asymptotically. */
function laiRobbins(rates: number[]): number {
  const best = Math.max(...rates);
  return rates.filter((r) => r < best).reduce((s, r) => s + (best - r) / kl(r, best), 0);
}

describe('Thompson sampling on Bernoulli arms', () => {
  const rates = [0.1, 0.2, 0.3, 0.45, 0.5];
  const m = banditManifest('thompson', rates.length, 1, { reward: 'bernoulli', seed: 1 });

  it('keeps regret within the logarithmic envelope, and it grows sublinearly', () => {
    const T = 20_000;
    const c = laiRobbins(rates);
    for (const seed of [1, 2, 3]) {
      const r = simulate(m, bernoulliEnv(rates, seed), T, { seed, flushEvery: 10 });
      const final = r.regret.at(-1)!.regret;
      const half = r.regret.find((p) => p.step === T / 2)!.regret;
      // Thompson sampling attains the Lai-Robbins rate; allow twice it plus a constant for the
      // first rounds and the batched (every 10 decisions) updates.
      expect(final, `seed ${seed}`).toBeLessThan(2 * c * Math.log(T) + 50);
      // Linear regret would double from T/2 to T.
      expect(final / half, `seed ${seed}`).toBeLessThan(1.35);
      // Far better than uniform, close to the best arm.
      expect(r.bestFixed - r.reward).toBeLessThan((r.bestFixed - r.uniform) * 0.05);
    }
  });
});

describe('LinUCB on a linear contextual environment', () => {
  const env = () => linearEnv(5, 8, 0.1, 7);
  const m = banditManifest('linucb', 5, 8, { alpha: 0.5, seed: 3 });

  it('beats the best fixed arm and uniform random, with sublinear regret', () => {
    const T = 10_000;
    const r = simulate(m, env(), T, { seed: 3 });
    expect(r.reward).toBeGreaterThan(r.bestFixed);
    expect(r.reward).toBeGreaterThan(r.uniform);
    const final = r.regret.at(-1)!.regret;
    const half = r.regret.find((p) => p.step === T / 2)!.regret;
    expect(final / half).toBeLessThan(1.3);
  });

  it('linear Thompson sampling also beats the best fixed arm', () => {
    const lts = banditManifest('thompson', 5, 8, { reward: 'linear', v: 0.2, seed: 5, propensity_draws: 50 });
    const r = simulate(lts, env(), 6000, { seed: 5 });
    expect(r.reward).toBeGreaterThan(r.bestFixed);
  });
});

describe('epsilon-greedy', () => {
  it('logs exact propensities: epsilon / K, plus 1 - epsilon for the greedy arm', () => {
    const m = banditManifest('epsilon-greedy', 4, 3, { epsilon: 0.2, seed: 9 });
    const c = parseBanditConfig(m);
    const learner = new BanditLearner(m, { check: () => ({ ok: true }) }, { state: initialState(c), updates: 0, events: 0 });
    // Teach arm 2 to be best for this context.
    const x = Float32Array.from([1, 0.5, -0.25]);
    for (let i = 0; i < 50; i++) {
      learner.offer({ eventId: `${i}`, reward: i % 4 === 2 ? 1 : 0, at: i, decision: { eventId: `${i}`, at: i, model: 'sim', variant: '', version: '1', propensity: 0.25, routeGen: 0, features: x, action: i % 4 } });
    }
    learner.flush();
    const policy = new BanditPolicy(c, createRng(11), 1);
    const out = { action: new Int32Array(1), propensity: new Float32Array(1), scores: new Float32Array(4) };
    const counts = new Float64Array(4);
    const N = 40_000;
    const state = learner.cell.read().data;
    for (let i = 0; i < N; i++) {
      policy.decide(state, x, 1, out);
      const a = out.action[0]!;
      counts[a]!++;
      expect(out.propensity[0]).toBe(Math.fround(a === 2 ? 0.2 / 4 + 0.8 : 0.2 / 4));
    }
    // The logged propensities are the true choice frequencies (binomial 4-sigma bounds).
    for (let a = 0; a < 4; a++) {
      const p = a === 2 ? 0.85 : 0.05;
      expect(Math.abs(counts[a]! / N - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / N));
    }
    const probs = new Float64Array(4);
    policy.probabilities(state, x, probs);
    expect([...probs]).toEqual([0, 1, 2, 3].map((i) => (i === 2 ? 0.2 / 4 + 0.8 : 0.2 / 4)));
  });

  it('decays epsilon with the fleet-wide event count (inverse schedule)', () => {
    const m = banditManifest('epsilon-greedy', 3, 2, { epsilon: { type: 'inverse', epsilon: 0.3, min_epsilon: 0.03, scale: 100 }, seed: 2 });
    const r = simulate(m, linearEnv(3, 2, 0.1, 4), 3000, { seed: 2 });
    expect(r.reward).toBeGreaterThan(r.uniform);
  });
});

describe('Thompson propensities', () => {
  it('estimates each arm probability; the logged propensity matches choice frequencies', () => {
    const m = banditManifest('thompson', 3, 1, { reward: 'bernoulli', propensity_draws: 400, min_propensity: 0.02, seed: 4 });
    const c = parseBanditConfig(m);
    // Posterior Beta(1+s, 1+f): arm 0 (5, 9), arm 1 (8, 6), arm 2 (7, 7).
    const state = Float64Array.from([4, 7, 6, 8, 5, 6]);
    const policy = new BanditPolicy(c, createRng(21), 1);
    const out = { action: new Int32Array(1), propensity: new Float32Array(1), scores: new Float32Array(3) };
    const x = new Float32Array(1);
    const counts = new Float64Array(3);
    const sumP = new Float64Array(3);
    const N = 20_000;
    for (let i = 0; i < N; i++) {
      policy.decide(state, x, 1, out);
      counts[out.action[0]!]!++;
      sumP[out.action[0]!]! += out.propensity[0]!;
      expect(out.propensity[0]).toBeGreaterThanOrEqual(Math.fround(0.02));
    }
    for (let a = 0; a < 3; a++) {
      // Mean logged propensity of arm a's choices estimates P(a) (Monte Carlo, 400 draws each).
      expect(Math.abs(sumP[a]! / counts[a]! - counts[a]! / N)).toBeLessThan(0.02);
    }
  });
});
