/**
 * Population Stability Index of a current sample against a reference sample of one feature.
 *
 * Bins come from the reference alone: the interior cut points are the reference's quantiles at
 * k / bins (k = 1 .. bins - 1, numpy's default 'linear' quantile, reproduced bit for bit), with
 * repeated cut points merged, so a value tied across several quantiles makes one bin instead of
 * empty ones. Bins are closed on the right: (-inf, e1], (e1, e2], ..., (em, +inf), so the whole
 * mass of a tied value lands in the bin its edge closes. A constant reference (all quantiles equal
 * to c) gets the extra edge just below c (the next double down), giving three bins: below, at and
 * above c, so a constant feature that starts moving either way shows up.
 *
 * Proportions are smoothed additively (Laplace / Lidstone): p_i = (count_i + s) / (n + s * bins)
 * with s = 0.5 by default, in both samples. An empty bin then costs a finite amount instead of an
 * infinite ln(p / 0), a bin empty in both samples contributes exactly 0, and the smoothing fades as
 * the samples grow (unlike a fixed epsilon floor, which weighs the same at n = 50 as at n = 50,000).
 *
 *   PSI = sum_i (p_i - q_i) ln(p_i / q_i),  p = current, q = reference.
 *
 * Usual reading (PSI_LEVELS): < 0.1 stable, 0.1 - 0.25 moderate shift, >= 0.25 significant shift.
 *
 * Missing values (NaN) are left out here: data-quality.ts counts them. +-Infinity fall in the end bins.
 * The incremental form (PsiReference + PsiHistogram) keeps bin edges and counts only, O(bins)
 * memory per feature, and gives the same PSI as psi() on the same values.
 * Checked against numpy in test/analyze/drift-reference.test.ts (scripts/stats/drift_reference.py).
 */
import { SluiceError } from '../errors.js';

export const PSI_DEFAULT_BINS = 10;
export const PSI_DEFAULT_SMOOTHING = 0.5;
/** The thresholds in common use: below `moderate` stable, from `significant` on a real shift. */
export const PSI_LEVELS = Object.freeze({ moderate: 0.1, significant: 0.25 });

export type PsiLevel = 'stable' | 'moderate' | 'significant';

export interface PsiOptions {
  /** Quantile bins wanted (fewer when the reference has ties). */
  bins?: number;
  /** Pseudo-count added to every bin of both samples. */
  smoothing?: number;
}

/** A reference distribution as kept per feature: plain data, storable as JSON. */
export interface PsiReference {
  /** Interior cut points, strictly increasing; bins = edges.length + 1. */
  edges: number[];
  /** Reference values per bin. */
  counts: number[];
  /** Reference values counted (NaN excluded). */
  total: number;
}

export interface PsiResult {
  psi: number;
  level: PsiLevel;
  bins: number;
  referenceCount: number;
  currentCount: number;
}

function invalid(message: string): never {
  throw new SluiceError('INVALID_ARGUMENT', `psi: ${message}`);
}

function checkBins(bins: number): void {
  if (!Number.isInteger(bins) || bins < 2 || bins > 1000) invalid(`bins ${bins} must be an integer in [2, 1000]`);
}

function checkSmoothing(s: number): void {
  if (!(Number.isFinite(s) && s > 0)) invalid(`smoothing ${s} must be a finite number > 0`);
}

/** The non-NaN values, sorted ascending. */
function sortedPresent(values: ArrayLike<number>): Float64Array {
  const out = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v !== 'number') invalid(`value at ${i} is not a number`);
    if (!Number.isNaN(v)) out[n++] = v;
  }
  return out.subarray(0, n).sort();
}

/** numpy.quantile(sorted, q, method='linear') on an ascending array, including numpy's lerp. */
export function quantileLinear(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  const virtual = (n - 1) * q;
  const lo = Math.floor(virtual);
  const hi = Math.min(lo + 1, n - 1);
  const t = virtual - lo;
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  const diff = b - a;
  // numpy computes from the nearer end so the result stays within [a, b] and exact at t = 0 or 1.
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/** Index of the bin holding x: the number of edges strictly below it (bins closed on the right). */
export function binIndex(edges: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The double just below x (numpy.nextafter(x, -inf)) for a finite x. */
function nextDown(x: number): number {
  if (x === 0) return -Number.MIN_VALUE;
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const bits = buf.getBigUint64(0);
  buf.setBigUint64(0, x > 0 ? bits - 1n : bits + 1n);
  return buf.getFloat64(0);
}

/** Quantile cut points of a reference sample (see the header for ties and constants). */
export function psiEdges(reference: ArrayLike<number>, bins = PSI_DEFAULT_BINS): number[] {
  checkBins(bins);
  const sorted = sortedPresent(reference);
  if (sorted.length === 0) invalid('the reference has no values (all missing or empty)');
  return edgesFromSorted(sorted, bins);
}

function edgesFromSorted(sorted: Float64Array, bins: number): number[] {
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const e = quantileLinear(sorted, k / bins);
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  if (edges.length === 1 && sorted[0] === sorted[sorted.length - 1] && Number.isFinite(edges[0]!)) {
    edges.unshift(nextDown(edges[0]!));
  }
  return edges;
}

function countInto(edges: ArrayLike<number>, values: ArrayLike<number>, counts: Float64Array): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v !== 'number') invalid(`value at ${i} is not a number`);
    if (Number.isNaN(v)) continue;
    counts[binIndex(edges, v)]! += 1;
    n++;
  }
  return n;
}

/** A reference histogram: quantile edges of the sample and its counts in them. */
export function psiReference(reference: ArrayLike<number>, bins = PSI_DEFAULT_BINS): PsiReference {
  const edges = psiEdges(reference, bins);
  const counts = new Float64Array(edges.length + 1);
  const total = countInto(edges, reference, counts);
  return { edges, counts: Array.from(counts), total };
}

export function psiLevel(value: number): PsiLevel {
  if (value >= PSI_LEVELS.significant) return 'significant';
  if (value >= PSI_LEVELS.moderate) return 'moderate';
  return 'stable';
}

/** PSI from two count vectors over the same bins, smoothed additively. */
export function psiFromCounts(reference: ArrayLike<number>, current: ArrayLike<number>, smoothing = PSI_DEFAULT_SMOOTHING): number {
  checkSmoothing(smoothing);
  const bins = reference.length;
  if (bins !== current.length || bins < 1) invalid(`count vectors differ in length (${reference.length} vs ${current.length})`);
  let nRef = 0;
  let nCur = 0;
  for (let i = 0; i < bins; i++) {
    const r = reference[i]!;
    const c = current[i]!;
    if (!(r >= 0 && c >= 0 && Number.isFinite(r) && Number.isFinite(c))) invalid(`bin ${i} has a bad count`);
    nRef += r;
    nCur += c;
  }
  if (nRef === 0 || nCur === 0) invalid(`a sample is empty (reference ${nRef}, current ${nCur} values)`);
  const qDen = nRef + smoothing * bins;
  const pDen = nCur + smoothing * bins;
  let sum = 0;
  for (let i = 0; i < bins; i++) {
    const q = (reference[i]! + smoothing) / qDen;
    const p = (current[i]! + smoothing) / pDen;
    sum += (p - q) * Math.log(p / q);
  }
  return sum;
}

function result(ref: PsiReference, counts: ArrayLike<number>, currentCount: number, smoothing: number): PsiResult {
  const value = psiFromCounts(ref.counts, counts, smoothing);
  return { psi: value, level: psiLevel(value), bins: ref.counts.length, referenceCount: ref.total, currentCount };
}

/** PSI of `current` against `reference` (both raw samples of one feature). */
export function psi(reference: ArrayLike<number>, current: ArrayLike<number>, options: PsiOptions = {}): PsiResult {
  const ref = psiReference(reference, options.bins ?? PSI_DEFAULT_BINS);
  const counts = new Float64Array(ref.counts.length);
  const n = countInto(ref.edges, current, counts);
  return result(ref, counts, n, options.smoothing ?? PSI_DEFAULT_SMOOTHING);
}

function checkReference(ref: PsiReference): void {
  const { edges, counts } = ref;
  if (!Array.isArray(edges) || !Array.isArray(counts) || counts.length !== edges.length + 1) invalid('reference needs counts.length = edges.length + 1');
  for (let i = 1; i < edges.length; i++) if (!(edges[i]! > edges[i - 1]!)) invalid('reference edges must increase strictly');
  let sum = 0;
  for (const c of counts) {
    if (!(Number.isFinite(c) && c >= 0)) invalid('reference counts must be finite and >= 0');
    sum += c;
  }
  if (!(sum > 0) || sum !== ref.total) invalid(`reference total ${ref.total} differs from its counts (${sum})`);
}

/**
 * The current side of an incremental PSI: counts in the reference's bins, one value at a time.
 * Memory O(bins); add() is O(log bins).
 */
export class PsiHistogram {
  readonly reference: Readonly<PsiReference>;
  private readonly counts: Float64Array;
  private n = 0;

  constructor(reference: PsiReference, readonly smoothing = PSI_DEFAULT_SMOOTHING) {
    checkReference(reference);
    checkSmoothing(smoothing);
    this.reference = Object.freeze({ edges: [...reference.edges], counts: [...reference.counts], total: reference.total });
    this.counts = new Float64Array(reference.counts.length);
  }

  /** Counts a value; NaN (missing) is skipped and returns false. */
  add(x: number): boolean {
    if (typeof x !== 'number') invalid('value is not a number');
    if (Number.isNaN(x)) return false;
    this.counts[binIndex(this.reference.edges, x)]! += 1;
    this.n++;
    return true;
  }

  get count(): number {
    return this.n;
  }

  /** A copy of the current counts per bin. */
  snapshot(): number[] {
    return Array.from(this.counts);
  }

  /** PSI so far; null before the first value. */
  result(): PsiResult | null {
    if (this.n === 0) return null;
    return result(this.reference, this.counts, this.n, this.smoothing);
  }

  /** Starts a new current window against the same reference. */
  reset(): void {
    this.counts.fill(0);
    this.n = 0;
  }
}
