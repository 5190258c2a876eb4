/**
 * Which checkpoints to keep: the newest `last`, plus the newest of each UTC calendar hour for
 * the current hour and the `hourly - 1` before it, plus the newest of each UTC day for the
 * current day and the `daily - 1` before it. The three sets overlap; what none of them names
 * is pruned. Pure (no clock, no database) so that it is tested on its own.
 */
import { SluiceError } from '../errors.js';

export interface RetentionPolicy {
  /** The newest N checkpoints, whenever they were made (at least 1: the newest is never pruned). */
  last: number;
  /** One per hour for this many hours (0: none). */
  hourly: number;
  /** One per day for this many days (0: none). */
  daily: number;
}

export const DEFAULT_RETENTION: Readonly<RetentionPolicy> = Object.freeze({ last: 5, hourly: 24, daily: 7 });

export interface Dated {
  id: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Refuses a policy that is not whole numbers, or that could prune the newest checkpoint. */
export function checkRetention(p: RetentionPolicy): RetentionPolicy {
  const whole = (v: number, min: number): boolean => Number.isSafeInteger(v) && v >= min;
  if (!whole(p.last, 1) || !whole(p.hourly, 0) || !whole(p.daily, 0)) {
    throw new SluiceError('INVALID_ARGUMENT', 'checkpoint retention: last must be a whole number >= 1, hourly and daily whole numbers >= 0');
  }
  return p;
}

/** Newest first; ties in time (one clock tick) broken by id, which the database assigns in order. */
function newestFirst(a: Dated, b: Dated): number {
  return b.createdAt - a.createdAt || b.id - a.id;
}

/** The ids to keep among `rows` at time `now` (ms since the epoch). */
export function selectRetained(rows: readonly Dated[], now: number, policy: RetentionPolicy): Set<number> {
  checkRetention(policy);
  const sorted = [...rows].sort(newestFirst);
  const keep = new Set<number>(sorted.slice(0, policy.last).map((r) => r.id));
  const newestPerBucket = (size: number, count: number): void => {
    // Buckets are calendar hours/days (epoch-aligned, so UTC): the current one is `current`.
    const current = Math.floor(now / size);
    const seen = new Set<number>();
    for (const r of sorted) {
      const bucket = Math.floor(r.createdAt / size);
      if (bucket <= current - count || seen.has(bucket)) continue;
      seen.add(bucket); // sorted newest first: the first row met in a bucket is its newest
      keep.add(r.id);
    }
  };
  newestPerBucket(HOUR_MS, policy.hourly);
  newestPerBucket(DAY_MS, policy.daily);
  return keep;
}
