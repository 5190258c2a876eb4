/**
 * Choosing a route's variant for one request, and whether to mirror it to each shadow.
 *
 * Hash assignment is sticky per unit: the unit id's bucket is MurmurHash3 x86_32 of the UTF-8
 * bytes of `salt + ":" + unitId` (seed 0) divided by 2^32, a pure function of the route and the
 * id, so every replica, every I/O thread and every restart picks the same variant for the same
 * unit. The bucket falls into the variants' cumulative weights in spec order: changing one
 * weight moves only the units near the boundaries it shifts, and every boundary after it. A route
 * whose variants carry ranges (src/routing/ranges.ts) instead puts the bucket in the variant whose
 * range holds it, so a rebalanced route moves only the units in the pieces that changed hands.
 * Without a unit id (undefined or empty) a hash route assigns at random, per request.
 *
 * The propensity is exact: the variant's normalised weight, the probability that the route
 * chose it (for random assignment per request; for hash assignment over units).
 *
 * A bandit route's weights are not in its spec: the control plane publishes them, as rewards
 * arrive, in a state cell (src/learn/state-cell.ts) that `pick` reads; the propensity is the
 * published weight of the variant picked, exact again.
 *
 * `pick` runs per request: everything it needs is computed in the constructor, and it allocates
 * nothing but its answer (bench/routing-pick.ts measures it).
 */
import { murmur3, murmur3Finish, murmur3Prefix, type Murmur3State } from './murmur3.js';
import { segments } from './ranges.js';
import type { RouteSpec } from './route.js';
import { StateCell } from '../learn/state-cell.js';

const TWO_POW_32 = 4294967296;

/** The unit's bucket in [0, 1) for `salt`: MurmurHash3 x86_32 of salt + ":" + unitId, / 2^32. */
export function unitBucket(salt: string, unitId: string): number {
  return murmur3(`${salt}:${unitId}`) / TWO_POW_32;
}

export interface Pick {
  /** Index into the route's variants. */
  index: number;
  /** The probability the route gives this choice: the variant's normalised weight. */
  propensity: number;
}

export class Assigner {
  private readonly hash: boolean;
  /**
   * Upper bounds of the intervals of [0, 1) in position order, the last never read (it takes the
   * rest), and the variant each belongs to: one interval per variant (cumulative weights) or one
   * per range.
   */
  private readonly upper: Float64Array;
  private readonly variantOf: Int32Array;
  private readonly weights: Float64Array;
  private readonly fractions: Float64Array;
  /** The hash state after salt + ":", so a pick hashes only the unit id. */
  private readonly prefix: Murmur3State;
  /** A bandit route's published weights. */
  private readonly cell: StateCell | undefined;

  constructor(spec: RouteSpec, weights?: SharedArrayBuffer) {
    const n = spec.variants.length;
    this.hash = spec.assignment === 'hash';
    this.weights = Float64Array.from(spec.variants, (v) => v.weight);
    if (spec.variants[0]!.ranges) {
      const s = segments(spec.variants.map((v) => v.ranges!));
      this.upper = Float64Array.from(s.upper);
      this.variantOf = Int32Array.from(s.variant);
    } else {
      this.upper = new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) this.upper[i] = sum += this.weights[i]!;
      this.variantOf = Int32Array.from({ length: n }, (_, i) => i);
    }
    this.fractions = Float64Array.from(spec.shadows, (s) => s.fraction);
    this.prefix = murmur3Prefix(`${spec.salt}:`);
    this.cell = spec.assignment === 'bandit' && weights ? new StateCell(weights) : undefined;
  }

  /** The variant for a request of `unitId` (random per request without one). */
  pick(unitId: string | undefined, random: () => number = Math.random): Pick {
    if (this.cell) return this.pickPublished(random());
    const u = this.hash && unitId !== undefined && unitId !== '' ? murmur3Finish(this.prefix, unitId) / TWO_POW_32 : random();
    const upper = this.upper;
    const last = upper.length - 1;
    // The last interval takes whatever rounding left above the second-to-last bound.
    let k = 0;
    if (last < 8) {
      // Linear: most routes have a handful of variants, and the first is usually the big one.
      while (k < last && u >= upper[k]!) k++;
    } else {
      // Binary, for a route with many ranges (up to MAX_RANGES): the first k with u < upper[k].
      let hi = last;
      while (k < hi) {
        const mid = (k + hi) >>> 1;
        if (u < upper[mid]!) hi = mid;
        else k = mid + 1;
      }
    }
    const i = this.variantOf[k]!;
    return { index: i, propensity: this.weights[i]! };
  }

  /** A bandit route's pick: `u` into the published weights' cumulative intervals. */
  private pickPublished(u: number): Pick {
    const cell = this.cell!;
    for (;;) {
      const view = cell.read();
      const w = view.data;
      const last = w.length - 1;
      let i = 0;
      let upper = w[0]!;
      while (i < last && u >= upper) upper += w[++i]!;
      const propensity = w[i]!;
      if (cell.stable(view)) return { index: i, propensity };
    }
  }

  /** Whether to mirror this request to shadow `i` (with that shadow's fraction). */
  shadowPick(i: number, random: () => number = Math.random): boolean {
    const f = this.fractions[i];
    return f !== undefined && random() < f;
  }
}
