/**
 * The binned Mann-Whitney U test against scipy (scripts/stats/mann_whitney_reference.py wrote
 * the values in test/fixtures/stats/mann-whitney-reference.json from the expanded samples).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { mannWhitney, type Bins } from '../../src/analyze/mann-whitney.js';

interface Case { name: string; alternative: 'two-sided' | 'greater' | 'less'; x: Bins; y: Bins; u: number; p: number }
const ref = JSON.parse(readFileSync(new URL('../fixtures/stats/mann-whitney-reference.json', import.meta.url), 'utf8')) as { cases: Case[] };

describe('Mann-Whitney U on binned samples', () => {
  it.each(ref.cases.map((c) => [`${c.name} (${c.alternative})`, c] as const))('%s equals scipy', (_, c) => {
    const r = mannWhitney(c.x, c.y, c.alternative);
    expect(r.u).toBeCloseTo(c.u, 9);
    expect(Math.abs(r.p! - c.p)).toBeLessThanOrEqual(1e-9 * Math.max(1, c.p) + 1e-12);
  });

  it('finds a slower candidate and not an equal one', () => {
    const slow = ref.cases.find((c) => c.name === 'slower candidate' && c.alternative === 'greater')!;
    expect(mannWhitney(slow.x, slow.y, 'greater').p!).toBeLessThan(0.01);
    const same = ref.cases.find((c) => c.name === 'same distribution' && c.alternative === 'greater')!;
    expect(mannWhitney(same.x, same.y, 'greater').p!).toBeGreaterThan(0.05);
  });

  it('has no p-value without data or without variance, and refuses non-counts', () => {
    expect(mannWhitney([], [[1, 3]]).p).toBeNull();
    expect(mannWhitney([[2, 5]], [[2, 7]])).toMatchObject({ u: 17.5, p: null, effect: 0.5 });
    expect(() => mannWhitney([[1, 1.5]], [[1, 1]])).toThrow(/not a count/);
  });
});
