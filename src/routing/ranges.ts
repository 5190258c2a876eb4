/**
 * Explicit hash ranges for a route's variants (issue #14: "a weight change moves only the units it
 * has to").
 *
 * A hash route puts a unit in the variant whose share of [0, 1) holds the unit's bucket
 * (src/routing/assign.ts). Without ranges the shares are the cumulative weights in spec order,
 * so a weight change shifts every boundary after it: 1/3,1/3,1/3 -> 1/2,1/4,1/4 moves 1/4 of the
 * units where 1/6 would do. With ranges each variant holds a list of [start, end) pieces, and
 * `rebalance` changes weights by moving only the mass that has to move: a variant that loses
 * weight gives up the END of its ranges, and the variants that gain take the freed pieces. The
 * mass moved is the sum of the gains (half the L1 distance between the weight vectors), the
 * minimum any reassignment can move; every unit outside a moved piece keeps its variant.
 *
 * The pieces of all variants together partition [0, 1). Hand-written ranges are compared with
 * RANGE_TOLERANCE (0.333 and 0.3330000001 meet); the numbers are kept exactly as given, and
 * `segments` reads the partition the way the Assigner does: each piece ends at its own end and
 * starts where the previous piece (in position order) ended, the last one ends at 1.
 */
import { SluiceError } from '../errors.js';

/** [start, end) within [0, 1]. */
export type Range = readonly [number, number];
/** Ranges per variant, index as in the route's variants. */
export type VariantRanges = ReadonlyArray<readonly Range[]>;

/** How far a hand-written boundary may miss its neighbour (a gap or an overlap) or 0 and 1. */
export const RANGE_TOLERANCE = 1e-9;
/**
 * Pieces shorter than this that a rebalance would leave behind (rounding of the weights) go to
 * their neighbour instead: about 2^-40, ~1/250 of one 32-bit hash bucket, so no unit moves.
 */
export const MIN_PIECE = 1e-12;

function invalid(message: string): SluiceError {
  return new SluiceError('ROUTE_INVALID', message);
}

/** The partition in position order: segment k holds [upper[k-1] (0 for k = 0), upper[k]) for variant[k]. */
export interface Segments {
  upper: number[];
  variant: number[];
}

interface Piece { start: number; end: number; variant: number; at: number }

function pieces(ranges: VariantRanges): Piece[] {
  const all: Piece[] = [];
  ranges.forEach((list, variant) => list.forEach(([start, end], at) => all.push({ start, end, variant, at })));
  return all.sort((a, b) => a.start - b.start || a.end - b.end);
}

/**
 * Checks that the ranges partition [0, 1) (each piece 0 <= start < end <= 1, every variant has
 * one, no gap or overlap beyond RANGE_TOLERANCE); ROUTE_INVALID naming the piece otherwise, as
 * `variants[i].ranges[j]`.
 */
export function checkPartition(ranges: VariantRanges): void {
  const name = (p: Piece) => `variants[${p.variant}].ranges[${p.at}]`;
  ranges.forEach((list, i) => {
    if (list.length === 0) throw invalid(`variants[${i}].ranges must not be empty (every variant needs a share of [0, 1))`);
    list.forEach(([start, end], j) => {
      if (!(Number.isFinite(start) && Number.isFinite(end) && start >= 0 && start < end && end <= 1)) {
        throw invalid(`variants[${i}].ranges[${j}] must be [start, end) with 0 <= start < end <= 1, not [${start}, ${end}]`);
      }
      if (j > 0 && start < list[j - 1]![0]) throw invalid(`variants[${i}].ranges[${j}] starts before variants[${i}].ranges[${j - 1}]: list each variant's ranges in order`);
    });
  });
  const all = pieces(ranges);
  let prev: Piece | undefined;
  for (const p of all) {
    const prevEnd = prev ? prev.end : 0;
    const after = prev ? `${name(prev)} ends` : 'the ranges start';
    if (p.start > prevEnd + RANGE_TOLERANCE) throw invalid(`${name(p)} starts at ${p.start} but ${after} at ${prevEnd}: the ranges must cover [0, 1) with no gaps`);
    // A piece must also end after the previous one, or it would hold nothing of its own.
    if (p.start < prevEnd - RANGE_TOLERANCE || p.end <= prevEnd) throw invalid(`${name(p)} overlaps ${prev ? name(prev) : 'another range'}: the ranges must not overlap`);
    prev = p;
  }
  if (Math.abs(prev!.end - 1) > RANGE_TOLERANCE) throw invalid(`the ranges end at ${prev!.end} (${name(prev!)}): they must cover [0, 1) up to 1`);
}

/** The partition as the Assigner reads it (see the file header); `ranges` passed checkPartition. */
export function segments(ranges: VariantRanges): Segments {
  const all = pieces(ranges);
  const out: Segments = { upper: [], variant: [] };
  all.forEach((p, k) => {
    out.upper.push(k === all.length - 1 ? 1 : p.end);
    out.variant.push(p.variant);
  });
  return out;
}

/** Each variant's share of [0, 1) as `segments` reads the ranges: its exact propensity. */
export function rangeWeights(ranges: VariantRanges): number[] {
  const w = new Array<number>(ranges.length).fill(0);
  const s = segments(ranges);
  let lower = 0;
  s.upper.forEach((upper, k) => {
    w[s.variant[k]!]! += upper - lower;
    lower = upper;
  });
  return w;
}

/** The ranges that cumulative weights in order give (what a hash route without ranges does). */
export function cumulativeRanges(weights: readonly number[]): Range[][] {
  let start = 0;
  return weights.map((w, i) => {
    // The same sums the Assigner builds its bounds from, and the last ends at 1 exactly: a route
    // changing from weights to these ranges moves no unit.
    const end = i === weights.length - 1 ? 1 : start + w;
    const r: Range[] = [[start, end]];
    start = end;
    return r;
  });
}

/** From segments (position order) back to ranges per variant: slivers go to a neighbour, adjacent pieces of one variant merge. */
function toRanges(s: Segments, variants: number): Range[][] {
  const upper: number[] = [];
  const variant: number[] = [];
  let lower = 0;
  s.upper.forEach((u, k) => {
    const v = s.variant[k]!;
    const n = upper.length;
    if (n > 0 && (variant[n - 1] === v || u - lower < MIN_PIECE)) {
      upper[n - 1] = u; // the same variant continues, or a sliver the previous piece takes
    } else if (n === 1 && upper[0]! < MIN_PIECE) {
      upper[0] = u; // the first piece was a sliver: this one takes it
      variant[0] = v;
    } else {
      upper.push(u);
      variant.push(v);
    }
    lower = u;
  });
  const out: Range[][] = Array.from({ length: variants }, () => []);
  let start = 0;
  upper.forEach((u, k) => {
    out[variant[k]!]!.push([start, u]);
    start = u;
  });
  return out;
}

/**
 * New ranges for `newWeights` (positive; normalised to sum 1 like a route's weights) that move
 * the least mass from `current` (ranges per variant, e.g. `cumulativeRanges(weights)` for a
 * route without ranges): each variant that loses weight keeps the first part of its ranges in
 * position order and frees the end; the freed pieces, in position order, go to the variants that
 * gain, in variant order, each taking what it gains. Variants are neither added nor removed.
 * ROUTE_INVALID when `current` is not a partition or the weights do not fit it.
 */
export function rebalance(current: VariantRanges, newWeights: readonly number[]): Range[][] {
  const n = current.length;
  if (newWeights.length !== n) throw invalid(`rebalance: ${newWeights.length} new weights for ${n} variants`);
  newWeights.forEach((w, i) => {
    if (!(typeof w === 'number' && Number.isFinite(w) && w > 0)) throw invalid(`rebalance: newWeights[${i}] must be a finite number > 0, not ${w}`);
  });
  checkPartition(current);
  const sum = newWeights.reduce((a, w) => a + w, 0);
  if (!Number.isFinite(sum)) throw invalid('rebalance: the new weights must sum to a finite number');
  const target = newWeights.map((w) => w / sum);
  const have = rangeWeights(current);
  const s = segments(current);

  // Losers: walk each one's segments in position order, keep `target` of its mass, free the rest.
  const kept = [...target];
  const cut = { upper: [] as number[], variant: [] as number[], free: [] as boolean[] };
  let lower = 0;
  s.upper.forEach((upper, k) => {
    const v = s.variant[k]!;
    const loses = have[v]! - target[v]! >= MIN_PIECE;
    const keep = loses ? Math.min(upper - lower, Math.max(0, kept[v]!)) : upper - lower;
    if (loses) kept[v]! -= keep;
    if (keep >= MIN_PIECE && keep < upper - lower) {
      cut.upper.push(lower + keep, upper);
      cut.variant.push(v, v);
      cut.free.push(false, true);
    } else {
      cut.upper.push(upper);
      cut.variant.push(v);
      cut.free.push(keep < MIN_PIECE && loses);
    }
    lower = upper;
  });

  // Gainers, in variant order, take the freed pieces in position order.
  const gainers = target.map((t, v) => ({ v, need: t - have[v]! })).filter((g) => g.need >= MIN_PIECE);
  const out: Segments = { upper: [], variant: [] };
  let g = 0;
  lower = 0;
  cut.upper.forEach((upper, k) => {
    if (!cut.free[k] || gainers.length === 0) {
      // Nothing gains (only rounding was freed): the piece stays where it was.
      out.upper.push(upper);
      out.variant.push(cut.variant[k]!);
      lower = upper;
      return;
    }
    while (lower < upper) {
      const gainer = gainers[g]!;
      // The last gainer takes whatever is left, so rounding never leaves a gap.
      const last = g === gainers.length - 1;
      const end = last ? upper : Math.min(upper, lower + gainer.need);
      out.upper.push(end);
      out.variant.push(gainer.v);
      gainer.need -= end - lower;
      if (!last && gainer.need < MIN_PIECE) g++;
      lower = end;
    }
  });
  return toRanges(out, n);
}

/** The mass of [0, 1) whose variant differs between two partitions of the same variants (units moved / units). */
export function movedMass(before: VariantRanges, after: VariantRanges): number {
  const a = segments(before);
  const b = segments(after);
  let moved = 0;
  let lower = 0;
  let i = 0;
  let j = 0;
  while (i < a.upper.length && j < b.upper.length) {
    const upper = Math.min(a.upper[i]!, b.upper[j]!);
    if (a.variant[i] !== b.variant[j]) moved += upper - lower;
    lower = upper;
    if (a.upper[i] === upper) i++;
    if (b.upper[j] === upper) j++;
  }
  return moved;
}
