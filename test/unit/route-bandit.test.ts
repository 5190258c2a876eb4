/**
 * Bandit routes (issue #13 item 2): parsing, the weights' burn-in, minimum share and Thompson
 * probabilities, and the assigner picking from published weights with exact propensities.
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/native.js';
import { Assigner } from '../../src/routing/assign.js';
import { parseRoute, routeJson } from '../../src/routing/route.js';
import { RouteBandits, weightsOf } from '../../src/routing/route-bandit.js';
import { mulberry32 } from '../../src/learn/bandit/simulation.js';
import type { JoinedFeedback } from '../../src/learn/feedback.js';

const variants = [
  { name: 'a', version: '1', weight: 0.5 },
  { name: 'b', version: '2', weight: 0.3 },
  { name: 'c', version: '3', weight: 0.2 },
];

function feedback(variant: string, version: string, reward: number): JoinedFeedback {
  return { eventId: 'e', reward, at: 0, decision: { eventId: 'e', at: 0, model: 'm', variant, version, propensity: 0.5, routeGen: 1 } };
}

describe('bandit route specs', () => {
  it('parses the bandit settings with defaults and round-trips them', () => {
    const spec = parseRoute({ variants, assignment: 'bandit', bandit: { burn_in: 10, min_share: 0.1 } }, 'm');
    expect(spec.bandit).toEqual({ minShare: 0.1, burnIn: 10, reward: 'bernoulli', updateMs: 1000 });
    expect(parseRoute(routeJson(spec), 'm')).toEqual(spec);
    expect(parseRoute({ variants, assignment: 'bandit' }, 'm').bandit).toEqual({ minShare: 0.05, burnIn: 100, reward: 'bernoulli', updateMs: 1000 });
  });

  it('refuses bad settings with ROUTE_INVALID naming the field', () => {
    const bad = (body: unknown, what: RegExp) => expect(() => parseRoute(body, 'm')).toThrow(what);
    bad({ variants, assignment: 'hash', bandit: {} }, /bandit settings need assignment "bandit"/);
    bad({ variants, assignment: 'bandit', bandit: { min_share: 0.5 } }, /bandit.min_share/);
    bad({ variants, assignment: 'bandit', bandit: { burn_in: -1 } }, /bandit.burn_in/);
    bad({ variants, assignment: 'bandit', bandit: { reward: 'poisson' } }, /bandit.reward/);
    bad({ variants, assignment: 'bandit', bandit: { update_ms: 1 } }, /bandit.update_ms/);
    bad({ variants, assignment: 'bandit', bandit: { burnin: 3 } }, /unknown field "burnin"/);
  });
});

describe('bandit route weights', () => {
  const spec = parseRoute({ variants, assignment: 'bandit', bandit: { burn_in: 50, min_share: 0.05 } }, 'm');
  const rng = createRng(5);

  it('keep the spec weights until every variant has burn_in rewards', () => {
    const stats = [{ n: 500, sum: 400, sumsq: 400 }, { n: 500, sum: 100, sumsq: 100 }, { n: 49, sum: 49, sumsq: 49 }];
    expect([...weightsOf(spec, stats, rng)]).toEqual([0.5, 0.3, 0.2]);
  });

  it('then follow P(best) above the minimum share; a clear winner takes the rest', () => {
    const stats = [{ n: 500, sum: 400, sumsq: 400 }, { n: 500, sum: 100, sumsq: 100 }, { n: 500, sum: 150, sumsq: 150 }];
    const w = weightsOf(spec, stats, rng);
    expect(w[0]).toBeCloseTo(1 - 2 * 0.05, 3);
    expect(w[1]).toBeCloseTo(0.05, 3);
    expect(w[2]).toBeCloseTo(0.05, 3);
    // Two equal variants share the probability of being best.
    const tie = weightsOf(spec, [{ n: 200, sum: 100, sumsq: 100 }, { n: 200, sum: 100, sumsq: 100 }, { n: 200, sum: 10, sumsq: 10 }], rng);
    expect(Math.abs(tie[0]! - tie[1]!)).toBeLessThan(0.03);
    expect(tie[0]! + tie[1]! + tie[2]!).toBeCloseTo(1, 12);
  });

  it('shift traffic to the best variant as rewards arrive, and picks carry the published weight', () => {
    const bandits = new RouteBandits();
    const fast = parseRoute({ variants, assignment: 'bandit', bandit: { burn_in: 20, update_ms: 10_000 } }, 'm');
    const cell = bandits.start('m', fast, 7);
    const assigner = new Assigner(fast, cell);
    const u = mulberry32(3);
    const rates = [0.2, 0.6, 0.3];
    const picks = new Float64Array(3);
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 100; i++) {
        const p = assigner.pick(undefined, u);
        const published = bandits.weights('m')!.weights[p.index];
        expect(p.propensity).toBe(published);
        if (round >= 30) picks[p.index]!++;
        bandits.offer(feedback(fast.variants[p.index]!.name, fast.variants[p.index]!.version, u() < rates[p.index]! ? 1 : 0));
      }
      // The interval's work, done by hand (update_ms is long): republish from the evidence.
      bandits.refresh('m');
    }
    expect(picks[1]! / 1000).toBeGreaterThan(0.8);
    // Out-of-range rewards on a Bernoulli route are refused and counted.
    bandits.offer(feedback('a', '1', 7));
    expect(bandits.weights('m')!.refused).toBe(1);
    bandits.close();
  });
});
