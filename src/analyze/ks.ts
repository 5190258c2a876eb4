/**
 * Two-sample Kolmogorov-Smirnov test, two-sided: D = sup |F1(x) - F2(x)| and its p-value, as
 * scipy.stats.ks_2samp(a, b, alternative='two-sided', method=...) computes them (scipy 1.17).
 *
 * - 'exact': the probability that a random interleaving of the two samples reaches D, counted on
 *   lattice paths. Equal sizes: the alternating-binomial sum written in Horner form; unequal sizes:
 *   Hodges' inside method with Viehmann's (2021, arXiv:2102.08037) recursion for 1 - p, which stays
 *   accurate for small p. Like scipy, D is first rounded to a multiple of 1 / lcm(n1, n2).
 *   Exact under the null for continuous data; with ties it is conservative.
 * - 'asymp': the limiting Kolmogorov distribution, p = Q(sqrt(en) D) with en = n1 n2 / (n1 + n2),
 *   Q(t) = 2 sum_k (-1)^(k-1) exp(-2 k^2 t^2) (scipy.stats.kstwobign.sf). NOT scipy's 'asymp',
 *   which evaluates the finite-n distribution kstwo.sf(D, round(en)); the two differ by
 *   O(1/sqrt(en)), under 1e-2 for en in the thousands. @stdlib has no Kolmogorov distribution, so
 *   the series is written here; it is checked against scipy's kstwobign.
 * - 'auto' (default): 'exact' when max(n1, n2) <= 10,000, as scipy, otherwise 'asymp'; 'exact'
 *   falls back to 'asymp' where scipy does (lcm too large, or the computation leaves [0, 1]).
 *
 * Missing values (NaN) are left out (data-quality.ts counts them); infinities order like numbers.
 * Checked against scipy in test/analyze/drift-reference.test.ts (scripts/stats/drift_reference.py).
 */
import { SluiceError } from '../errors.js';
import type { Reservoir } from './reservoir.js';

export type KsMethod = 'auto' | 'exact' | 'asymp';

export interface KsResult {
  /** D, the largest distance between the two empirical CDFs (rounded to 1/lcm on the exact path). */
  statistic: number;
  /** Two-sided p-value. */
  p: number;
  /** The method that produced p. */
  method: 'exact' | 'asymp';
  n1: number;
  n2: number;
}

/** Largest sample size 'auto' computes exactly (scipy's MAX_AUTO_N). */
export const KS_MAX_EXACT_N = 10_000;
const INT32_MAX = 2 ** 31 - 1;

function invalid(message: string): never {
  throw new SluiceError('INVALID_ARGUMENT', `ks: ${message}`);
}

function sortedPresent(values: ArrayLike<number>, which: string): Float64Array {
  const out = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v !== 'number') invalid(`${which}[${i}] is not a number`);
    if (!Number.isNaN(v)) out[n++] = v;
  }
  if (n === 0) invalid(`the ${which} sample has no values (all missing or empty)`);
  return out.subarray(0, n).sort();
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** D from two sorted samples, computed as scipy does: ECDF differences at every pooled value. */
export function ksStatistic(a: Float64Array, b: Float64Array): number {
  const n1 = a.length;
  const n2 = b.length;
  let i = 0;
  let j = 0;
  let maxS = -Infinity;
  let minS = Infinity;
  while (i < n1 || j < n2) {
    // The next pooled value; both ECDFs count every value <= it (searchsorted side='right').
    const v = j >= n2 || (i < n1 && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    while (i < n1 && a[i]! <= v) i++;
    while (j < n2 && b[j]! <= v) j++;
    const diff = i / n1 - j / n2;
    if (diff > maxS) maxS = diff;
    if (diff < minS) minS = diff;
  }
  return Math.max(maxS, Math.min(Math.max(-minS, 0), 1));
}

/** Pr(D_{n,n} >= h/n): 2 (A0 (1 - A1 (1 - A2 (...)))), each Ai a ratio of binomials. */
function probOutsideSquare(n: number, h: number): number {
  let p = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let p1 = 1;
    for (let j = 0; j < h; j++) p1 = (n - k * h - j) * p1 / (n + k * h + j + 1);
    p = p1 * (1 - p);
  }
  return 2 * p;
}

/**
 * Share of lattice paths (0,0) -> (m,n) that leave the band |x/m - y/n| < h/lcm, computed column
 * by column over a sliding window; the recursion carries 1 - share so small p-values stay exact.
 */
function probOutsideBand(m0: number, n0: number, g: number, h: number): number {
  const m = Math.max(m0, n0);
  const n = Math.min(m0, n0);
  const mg = m / g;
  const ng = n / g;
  let minj = 0;
  let maxj = Math.min(Math.ceil(h / mg), n + 1);
  let curlen = maxj - minj;
  const a = new Float64Array(Math.min(2 * maxj + 2, n + 1)).fill(1);
  a.fill(0, minj, maxj);
  for (let i = 1; i <= m; i++) {
    const lastminj = minj;
    const lastlen = curlen;
    minj = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
    maxj = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (maxj <= minj) return 1;
    let val = minj === 0 ? 0 : 1;
    for (let jj = 0; jj < maxj - minj; jj++) {
      const j = jj + minj;
      val = (a[jj + minj - lastminj]! * i + val * j) / (i + j);
      a[jj] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) a.fill(1, maxj - minj, maxj - minj + (lastlen - curlen));
  }
  return a[maxj - minj - 1]!;
}

/** Q(t) = P(K > t) for the Kolmogorov distribution K (scipy.stats.kstwobign.sf). */
export function kolmogorovSf(t: number): number {
  if (Number.isNaN(t)) return Number.NaN;
  if (t <= 0) return 1;
  if (t < 1) {
    // Jacobi theta form of the CDF: sqrt(2 pi) / t sum_k exp(-(2k-1)^2 pi^2 / (8 t^2)); it
    // converges fast for small t, where the alternating series does not.
    const w = -(Math.PI * Math.PI) / (8 * t * t);
    let cdf = 0;
    for (let k = 1; k <= 20; k++) {
      const term = Math.exp((2 * k - 1) ** 2 * w);
      cdf += term;
      if (term < 1e-17 * cdf) break;
    }
    return 1 - Math.sqrt(2 * Math.PI) / t * cdf;
  }
  let sf = 0;
  for (let k = 1; k <= 100; k++) {
    const term = Math.exp(-2 * k * k * t * t);
    sf += k % 2 === 1 ? term : -term;
    if (term < 1e-17 * sf) break;
  }
  return Math.min(1, Math.max(0, 2 * sf));
}

function asymptotic(n1: number, n2: number, d: number): number {
  const en = n1 * n2 / (n1 + n2);
  return kolmogorovSf(Math.sqrt(en) * d);
}

/**
 * The exact p-value with D rounded to a multiple of 1/lcm; p is null where scipy gives up and
 * switches to 'asymp' (which then uses the rounded D, as scipy).
 */
function exact(n1: number, n2: number, d: number): { d: number; p: number | null } {
  const g = gcd(n1, n2);
  const lcm = (n1 / g) * n2;
  const h = Math.round(d * lcm);
  const dRounded = h / lcm;
  if (h === 0) return { d: dRounded, p: 1 };
  const p = n1 === n2 ? probOutsideSquare(n1, h) : probOutsideBand(n1, n2, g, h);
  return { d: dRounded, p: p >= 0 && p <= 1 ? p : null };
}

/** The two-sided two-sample KS test of samples `a` and `b` (see the header for the methods). */
export function ksTwoSample(a: ArrayLike<number>, b: ArrayLike<number>, method: KsMethod = 'auto'): KsResult {
  if (method !== 'auto' && method !== 'exact' && method !== 'asymp') invalid(`method ${String(method)} is not auto, exact or asymp`);
  const x = sortedPresent(a, 'first');
  const y = sortedPresent(b, 'second');
  const n1 = x.length;
  const n2 = y.length;
  let d = ksStatistic(x, y);
  const g = gcd(n1, n2);
  const lcmFits = n1 / g < INT32_MAX / (n2 / g);
  const tryExact = (method === 'exact' && lcmFits) || (method === 'auto' && Math.max(n1, n2) <= KS_MAX_EXACT_N);
  if (tryExact) {
    const r = exact(n1, n2, d);
    if (r.p !== null) return { statistic: r.d, p: r.p, method: 'exact', n1, n2 };
    d = r.d;
  }
  return { statistic: d, p: Math.min(1, Math.max(0, asymptotic(n1, n2, d))), method: 'asymp', n1, n2 };
}

/**
 * KS between two reservoir samples (for example the reference window's and the recent window's).
 * A reservoir is a uniform sample without replacement of its stream, so its size is the sample size.
 * Give both the same capacity: once full, equal sizes take the O(n) exact formula (10,000 a side:
 * ~25 ms, mostly sorting), where unequal sizes take the O(n1 * D * n2) lattice count (10,000 vs
 * 9,999 at D = 0.3: ~1.2 s on this machine, too long for the event loop).
 */
export function ksReservoirs(reference: Reservoir, current: Reservoir, method: KsMethod = 'auto'): KsResult {
  return ksTwoSample(reference.values(), current.values(), method);
}
