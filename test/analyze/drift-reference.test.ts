/**
 * PSI and KS against numpy / scipy on fixed data: test/fixtures/stats/drift-reference.json, written
 * by scripts/stats/drift_reference.py (the binning and smoothing are described there and in psi.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kolmogorovSf, ksReservoirs, ksTwoSample, type KsMethod } from '../../src/analyze/ks.js';
import { PsiHistogram, psi, psiReference } from '../../src/analyze/psi.js';
import { Reservoir } from '../../src/analyze/reservoir.js';
import { projectRoot } from '../../src/paths.js';

type Data = (number | null | 'inf' | '-inf')[];
interface PsiCase { name: string; bins: number; smoothing: number; reference: Data; current: Data; edges: number[]; reference_counts: number[]; current_counts: number[]; psi: number }
interface KsCase { name: string; method: KsMethod; a: Data; b: Data; statistic: number; p: number; expected_method: 'exact' | 'asymp'; scipy_asymp_p?: number }
interface Reference { scipy_version: string; psi: PsiCase[]; ks: KsCase[]; kolmogorov: { t: number; sf: number }[] }

const ref = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/drift-reference.json'), 'utf8')) as Reference;
/** JSON has no NaN or infinities: the script wrote them as null, "inf" and "-inf". */
const values = (d: Data): number[] => d.map((v) => (v === null ? Number.NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v));

function close(actual: number, expected: number, what: string, rel = 1e-9): void {
  const tolerance = rel * Math.max(Math.abs(expected), 1e-300);
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tolerance);
}

describe(`PSI = numpy by hand (scipy ${ref.scipy_version} run)`, () => {
  it('the fixture covers ties, a constant reference, missing values and a significant shift', () => {
    const names = ref.psi.map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['zero_inflated', 'constant_reference', 'with_missing_and_infinities', 'mean_shift_1']));
    expect(ref.psi.find((c) => c.name === 'constant_reference')!.edges.length).toBe(2);
  });

  for (const c of ref.psi) {
    it(`${c.name}: edges, counts and PSI, batch and incremental`, () => {
      const reference = values(c.reference);
      const current = values(c.current);
      const built = psiReference(reference, c.bins);
      expect(built.edges).toEqual(c.edges);
      expect(built.counts).toEqual(c.reference_counts);
      const r = psi(reference, current, { bins: c.bins, smoothing: c.smoothing });
      close(r.psi, c.psi, 'psi');
      expect(r.bins).toBe(c.edges.length + 1);
      const hist = new PsiHistogram(built, c.smoothing);
      for (const x of current) hist.add(x);
      expect(hist.snapshot()).toEqual(c.current_counts);
      close(hist.result()!.psi, c.psi, 'incremental psi');
    });
  }
});

describe(`KS = scipy ${ref.scipy_version} ks_2samp (two-sided)`, () => {
  it('the fixture covers both exact paths, ties, a tiny p and both asymptotic routes', () => {
    const byName = new Map(ref.ks.map((c) => [c.name, c]));
    expect(byName.get('equal_n_tiny_p')!.p).toBeLessThan(1e-12);
    expect(byName.get('auto_above_10000')!.expected_method).toBe('asymp');
    expect(byName.get('asymp_explicit')!.expected_method).toBe('asymp');
    expect(byName.get('unequal_n_tiny_p')!.expected_method).toBe('exact');
  });

  for (const c of ref.ks) {
    it(`${c.name} (${c.method})`, () => {
      const r = ksTwoSample(values(c.a), values(c.b), c.method);
      expect(r.method).toBe(c.expected_method);
      close(r.statistic, c.statistic, 'D');
      close(r.p, c.p, 'p');
      expect(r.n1).toBe(c.a.length);
      expect(r.n2).toBe(c.b.length);
      // Ours is the limiting distribution, scipy's 'asymp' the finite-n one: close, not equal.
      if (c.scipy_asymp_p !== undefined) expect(Math.abs(r.p - c.scipy_asymp_p)).toBeLessThan(0.01);
    });
  }

  it('the Kolmogorov survival function equals scipy.stats.kstwobign.sf', () => {
    for (const { t, sf } of ref.kolmogorov) close(kolmogorovSf(t), sf, `Q(${t})`, 1e-12);
  });

  it('from two reservoirs holding whole samples: the same result as from the samples', () => {
    const c = ref.ks.find((k) => k.name === 'unequal_n')!;
    const a = new Reservoir(c.a.length, 1);
    const b = new Reservoir(c.b.length, 2);
    values(c.a).forEach((x) => a.add(x));
    values(c.b).forEach((x) => b.add(x));
    const r = ksReservoirs(a, b);
    close(r.statistic, c.statistic, 'D');
    close(r.p, c.p, 'p');
  });
});
