/** PSI, KS and the reservoir sampler at their edges: bad input, ties, constants, resets, uniformity. */
import { describe, expect, it } from 'vitest';
import { ksTwoSample } from '../../src/analyze/ks.js';
import { PsiHistogram, binIndex, psi, psiEdges, psiFromCounts, psiLevel, psiReference } from '../../src/analyze/psi.js';
import { Reservoir } from '../../src/analyze/reservoir.js';

const invalid = expect.objectContaining({ code: 'INVALID_ARGUMENT' });

describe('PSI edges', () => {
  it('bins are closed on the right and a constant reference gets below / at / above bins', () => {
    expect(binIndex([1, 2], 1)).toBe(0);
    expect(binIndex([1, 2], 1.5)).toBe(1);
    expect(binIndex([1, 2], 2)).toBe(1);
    expect(binIndex([1, 2], 2.5)).toBe(2);
    const edges = psiEdges([5, 5, 5, 5]);
    expect(edges).toHaveLength(2);
    expect(edges[1]).toBe(5);
    expect(edges[0]).toBeLessThan(5);
    const ref = psiReference([5, 5, 5, 5]);
    const h = new PsiHistogram(ref);
    h.add(4.9999);
    h.add(5);
    h.add(5.0001);
    expect(h.snapshot()).toEqual([1, 1, 1]);
    // The constant moving down is noticed as well as up.
    expect(psi([5, 5, 5, 5, 5, 5], [4, 4, 4, 4, 4, 4]).level).toBe('significant');
  });

  it('levels follow the 0.1 / 0.25 thresholds; identical samples give PSI 0', () => {
    expect(psiLevel(0.0999)).toBe('stable');
    expect(psiLevel(0.1)).toBe('moderate');
    expect(psiLevel(0.25)).toBe('significant');
    const xs = Array.from({ length: 100 }, (_, i) => i);
    expect(psi(xs, xs).psi).toBe(0);
    // Smoothing by hand: q = [10.5, 0.5] / 11, p = [0.5, 10.5] / 11, PSI = 2 (10 / 11) ln 21.
    expect(psiFromCounts([10, 0], [0, 10])).toBeCloseTo(2 * (10 / 11) * Math.log(21), 14);
  });

  it('the incremental histogram resets and says nothing before a value', () => {
    const h = new PsiHistogram(psiReference([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    expect(h.result()).toBeNull();
    expect(h.add(Number.NaN)).toBe(false);
    for (let i = 0; i < 20; i++) h.add(100);
    expect(h.result()!.level).toBe('significant');
    expect(h.result()!.currentCount).toBe(20);
    h.reset();
    expect(h.count).toBe(0);
    expect(h.result()).toBeNull();
  });

  it('refuses empty samples, bad bins, bad smoothing and inconsistent references', () => {
    expect(() => psi([], [1])).toThrow(invalid);
    expect(() => psi([Number.NaN], [1])).toThrow(invalid);
    expect(() => psi([1, 2], [])).toThrow(invalid);
    expect(() => psi([1, 2], [1], { bins: 1 })).toThrow(invalid);
    expect(() => psi([1, 2], [1], { smoothing: 0 })).toThrow(invalid);
    expect(() => new PsiHistogram({ edges: [2, 1], counts: [1, 1, 1], total: 3 })).toThrow(invalid);
    expect(() => new PsiHistogram({ edges: [1], counts: [1, 1], total: 5 })).toThrow(invalid);
    expect(() => psiFromCounts([1, 2], [1])).toThrow(invalid);
  });
});

describe('KS edges', () => {
  it('missing values are left out; an all-missing sample is refused', () => {
    const r = ksTwoSample([1, 2, Number.NaN, 3], [1, 2, 3]);
    expect(r.n1).toBe(3);
    expect(r.statistic).toBe(0);
    expect(r.p).toBe(1);
    expect(() => ksTwoSample([Number.NaN], [1])).toThrow(invalid);
    expect(() => ksTwoSample([1], [1], 'fast' as 'exact')).toThrow(invalid);
  });

  it('separated samples give D = 1 and a small p', () => {
    const r = ksTwoSample([1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14]);
    expect(r.statistic).toBe(1);
    expect(r.p).toBeLessThan(0.001);
  });
});

describe('reservoir sampler (Algorithm R)', () => {
  it('keeps everything until full, then capacity values, replayable from its seed', () => {
    const a = new Reservoir(5, 42);
    for (let i = 0; i < 3; i++) a.add(i);
    expect(Array.from(a.values())).toEqual([0, 1, 2]);
    for (let i = 3; i < 1000; i++) a.add(i);
    expect(a.size).toBe(5);
    expect(a.seen).toBe(1000);
    const b = new Reservoir(5, 42);
    for (let i = 0; i < 1000; i++) b.add(i);
    expect(Array.from(b.values())).toEqual(Array.from(a.values()));
    a.clear();
    expect(a.size).toBe(0);
  });

  it('every stream position is equally likely to be held (chi-square over 2,000 runs)', () => {
    const n = 100;
    const capacity = 10;
    const runs = 2000;
    const hits = new Array<number>(n).fill(0);
    for (let s = 0; s < runs; s++) {
      const r = new Reservoir(capacity, s + 1);
      for (let i = 0; i < n; i++) r.add(i);
      for (const v of r.values()) hits[v]!++;
    }
    const expected = runs * capacity / n;
    const chi2 = hits.reduce((sum, h) => sum + (h - expected) ** 2 / expected, 0);
    // 99.9th percentile of chi-square with 99 degrees of freedom is about 148.2.
    expect(chi2).toBeLessThan(148.2);
    // The last positions are kept as often as the first (a broken replacement rule skews this).
    const firstHalf = hits.slice(0, n / 2).reduce((x, y) => x + y, 0);
    expect(firstHalf / (runs * capacity)).toBeGreaterThan(0.47);
    expect(firstHalf / (runs * capacity)).toBeLessThan(0.53);
  });

  it('refuses a bad capacity or seed, and skips missing values', () => {
    expect(() => new Reservoir(0, 1)).toThrow(invalid);
    expect(() => new Reservoir(3, 1.5)).toThrow(invalid);
    const r = new Reservoir(3, 1);
    r.add(Number.NaN);
    expect(r.seen).toBe(0);
  });
});
