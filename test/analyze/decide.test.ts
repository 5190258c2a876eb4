/**
 * decide(): the stopping rules in their order (SRM, minimums, harm, winner, futility), on
 * hand-made analysis results.
 */
import { describe, expect, it } from 'vitest';
import type { Direction, MetricResult, TreatmentResult } from '../../src/analyze/analyze.js';
import { decide, type DecisionInput } from '../../src/analyze/decide.js';

function cell(diff: number, seqP: number, seqCi: [number, number], seqPHolm = seqP): TreatmentResult {
  return {
    n_control: 1000, n_treatment: 1000, control_mean: 10, treatment_mean: 10 + diff, diff, se: 0.1, ci: seqCi, lift: diff / 10, lift_ci: null,
    p: seqP, p_holm: seqPHolm, statistic: null, df: null, cohen_d: null, seq_p: seqP, seq_p_holm: seqPHolm, seq_ci: seqCi,
  };
}

function metric(name: string, cells: TreatmentResult[], direction: Direction = 'increase', role: MetricResult['role'] = 'primary'): MetricResult {
  return { name, role, direction, kind: 'mean', cuped_theta: null, treatments: cells };
}

const flat = cell(0.01, 0.8, [-0.3, 0.32]);

function input(over: Partial<DecisionInput>): DecisionInput {
  return {
    variants: ['control', 'b'], primary: metric('reward', [flat]), guardrails: [], unitsPerVariant: [1000, 1000],
    minUnitsPerVariant: 500, elapsedMs: 7200_000, minRuntimeMs: 3600_000, srmMismatch: false, alpha: 0.05, ...over,
  };
}

describe('decide', () => {
  const winning = metric('reward', [cell(0.5, 0.001, [0.2, 0.8])]);

  it('winner: significantly better on the primary (sequential, Holm-adjusted)', () => {
    expect(decide(input({ primary: winning }))).toMatchObject({ action: 'winner', variant: 'b' });
    // Significant before Holm but not after: no winner.
    expect(decide(input({ primary: metric('reward', [cell(0.5, 0.03, [0.01, 0.9], 0.06)]) })).action).toBe('continue');
  });

  it('never while SRM stands, before the minimum units or before the minimum run time', () => {
    expect(decide(input({ primary: winning, srmMismatch: true }))).toMatchObject({ action: 'continue', reason: expect.stringMatching(/sample ratio/) });
    expect(decide(input({ primary: winning, unitsPerVariant: [1000, 499] }))).toMatchObject({ action: 'continue', reason: expect.stringMatching(/minimum sample/) });
    expect(decide(input({ primary: winning, elapsedMs: 3599_000 }))).toMatchObject({ action: 'continue', reason: expect.stringMatching(/run time/) });
  });

  it('the largest significant improvement wins among several treatments; direction decides what better means', () => {
    const primary = metric('reward', [cell(0.3, 0.001, [0.1, 0.5]), cell(0.6, 0.002, [0.2, 1.0]), cell(0.9, 0.2, [-0.2, 2])]);
    expect(decide(input({ variants: ['control', 'b', 'c', 'd'], unitsPerVariant: [1000, 1000, 1000, 1000], primary }))).toMatchObject({ action: 'winner', variant: 'c' });
    const latency = metric('latency', [cell(-0.5, 0.001, [-0.8, -0.2])], 'decrease');
    expect(decide(input({ primary: latency }))).toMatchObject({ action: 'winner', variant: 'b' });
  });

  it('harm on the primary, and on a guardrail even when the primary wins (unadjusted p)', () => {
    expect(decide(input({ primary: metric('reward', [cell(-0.5, 0.001, [-0.8, -0.2])]) }))).toMatchObject({ action: 'harm', variant: 'b' });
    const errors = metric('error_rate', [cell(0.02, 0.04, [0.001, 0.04], 0.08)], 'decrease', 'guardrail');
    expect(decide(input({ primary: winning, guardrails: [errors] }))).toMatchObject({ action: 'harm', variant: 'b', reason: expect.stringMatching(/error_rate/) });
    // A guardrail that improved significantly is not harm.
    const fewerErrors = metric('error_rate', [cell(-0.02, 0.001, [-0.04, -0.01])], 'decrease', 'guardrail');
    expect(decide(input({ primary: winning, guardrails: [fewerErrors] })).action).toBe('winner');
  });

  it('of two harmful treatments, the one with the smaller p is named', () => {
    const primary = metric('reward', [cell(-0.3, 0.01, [-0.5, -0.1]), cell(-0.6, 0.0001, [-0.9, -0.3])]);
    expect(decide(input({ variants: ['control', 'b', 'c'], unitsPerVariant: [1000, 1000, 1000], primary }))).toMatchObject({ action: 'harm', variant: 'c' });
  });

  it('futility: every always-valid interval below the minimum effect (absolute or relative)', () => {
    expect(decide(input({ minimumEffect: { kind: 'absolute', value: 0.5 } }))).toMatchObject({ action: 'futility' });
    expect(decide(input({ minimumEffect: { kind: 'absolute', value: 0.3 } })).action).toBe('continue'); // upper bound 0.32
    // relative 5% of the control mean 10 = 0.5
    expect(decide(input({ minimumEffect: { kind: 'relative', value: 0.05 } })).action).toBe('futility');
    const twoArms = metric('reward', [flat, cell(0.2, 0.3, [-0.1, 0.6])]);
    expect(decide(input({ variants: ['control', 'b', 'c'], unitsPerVariant: [1000, 1000, 1000], primary: twoArms, minimumEffect: { kind: 'absolute', value: 0.5 } })).action).toBe('continue');
  });

  it('futility: the maximum sample reached everywhere without a winner', () => {
    expect(decide(input({ maxUnitsPerVariant: 1000 }))).toMatchObject({ action: 'futility', reason: expect.stringMatching(/maximum sample/) });
    expect(decide(input({ maxUnitsPerVariant: 1001 })).action).toBe('continue');
    expect(decide(input({ maxUnitsPerVariant: 1000, primary: winning })).action).toBe('winner');
  });

  it('mismatched shapes are programmer errors', () => {
    expect(() => decide(input({ variants: ['control', 'b', 'c'] }))).toThrow(/treatment names/);
  });
});
