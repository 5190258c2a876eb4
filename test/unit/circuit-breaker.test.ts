import { describe, expect, it } from 'vitest';
import { CircuitBreaker, CLOSED_CALL, REFUSED, type BreakerState } from '../../src/service/resilience/circuit-breaker.js';

function breaker(over: Partial<ConstructorParameters<typeof CircuitBreaker>[0]> = {}) {
  let now = 0;
  const moves: string[] = [];
  const b = new CircuitBreaker(
    { window: 10, minCalls: 4, failureRate: 0.5, openMs: 1000, halfOpenProbes: 2, closeAfter: 3, ...over },
    (from: BreakerState, to: BreakerState) => moves.push(`${from}>${to}`),
    () => now,
  );
  return { b, moves, advance: (ms: number) => (now += ms) };
}

function calls(b: CircuitBreaker, outcomes: boolean[]): void {
  for (const ok of outcomes) {
    const t = b.admit();
    expect(t).toBe(CLOSED_CALL);
    b.record(t, ok);
  }
}

describe('circuit breaker', () => {
  it('stays closed below the minimum of calls, then opens at the failure rate', () => {
    const { b, moves } = breaker();
    calls(b, [false, false, false]);
    expect(b.current).toBe('closed');
    calls(b, [false]);
    expect(b.current).toBe('open');
    expect(b.admit()).toBe(REFUSED);
    expect(moves).toEqual(['closed>open']);
  });

  it('judges a sliding window: old failures leave it', () => {
    const { b } = breaker({ window: 4, minCalls: 4, failureRate: 0.75 });
    calls(b, [false, false, true, true, true, true, false, false]);
    // The window now holds [true, true, false, false]: 2 of 4 failed, under 0.75.
    expect(b.current).toBe('closed');
    calls(b, [false]);
    expect(b.current).toBe('open');
  });

  it('after the cool-down lets a bounded number of probes through, closes after N successes', () => {
    const { b, moves, advance } = breaker();
    calls(b, [false, false, false, false]);
    advance(999);
    expect(b.admit()).toBe(REFUSED);
    advance(1);
    const p1 = b.admit();
    const p2 = b.admit();
    expect(p1).toBeGreaterThan(0);
    expect(p2).toBe(p1);
    expect(b.admit()).toBe(REFUSED); // only two probes at once
    expect(b.probes).toBe(2);
    b.record(p1, true);
    b.record(p2, true);
    expect(b.current).toBe('half_open');
    const p3 = b.admit();
    b.record(p3, true);
    expect(b.current).toBe('closed');
    expect(moves).toEqual(['closed>open', 'open>half_open', 'half_open>closed']);
    // Closed with an empty window: one failure does not reopen it.
    calls(b, [false]);
    expect(b.current).toBe('closed');
  });

  it('a failed probe reopens it; a late probe of an earlier half-open period is ignored', () => {
    const { b, moves, advance } = breaker();
    calls(b, [false, false, false, false]);
    advance(1000);
    const p1 = b.admit();
    const p2 = b.admit();
    b.record(p1, false);
    expect(b.current).toBe('open');
    advance(1000);
    const p3 = b.admit();
    b.record(p2, true); // from the earlier period: no effect
    expect(b.probes).toBe(1);
    b.record(p3, true);
    expect(b.current).toBe('half_open');
    expect(moves).toEqual(['closed>open', 'open>half_open', 'half_open>open', 'open>half_open']);
  });

  it('a cancelled probe frees its place without a verdict', () => {
    const { b, advance } = breaker({ halfOpenProbes: 1 });
    calls(b, [false, false, false, false]);
    advance(1000);
    const p = b.admit();
    expect(b.admit()).toBe(REFUSED);
    b.cancel(p);
    expect(b.admit()).toBeGreaterThan(0);
    expect(b.current).toBe('half_open');
  });

  it('ignores closed calls that return after it opened', () => {
    const { b } = breaker();
    const late = b.admit();
    calls(b, [false, false, false, false]);
    expect(b.current).toBe('open');
    b.record(late, true);
    expect(b.current).toBe('open');
  });
});
