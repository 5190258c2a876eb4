/**
 * Choosing a route's variant for one request, and whether to mirror it to each shadow.
 *
 * Hash assignment is sticky per unit: the unit id's bucket is MurmurHash3 x86_32 of the UTF-8
 * bytes of `salt + ":" + unitId` (seed 0) divided by 2^32, a pure function of the route and the
 * id, so every replica, every I/O thread and every restart picks the same variant for the same
 * unit. The bucket falls into the variants' cumulative weights in spec order: changing one
 * weight moves only the units near the boundaries it shifts. Without a unit id (undefined or
 * empty) a hash route assigns at random, per request.
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
  /** Upper bounds of the variants' intervals in [0, 1); the last is never read (it takes the rest). */
  private readonly upper: Float64Array;
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
    this.upper = new Float64Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) this.upper[i] = sum += this.weights[i]!;
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
    // Linear: routes have a handful of variants (at most MAX_VARIANTS), and the first is usually
    // the big one. The last variant takes whatever rounding left above the second-to-last bound.
    let i = 0;
    while (i < last && u >= upper[i]!) i++;
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
