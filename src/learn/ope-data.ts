/**
 * The logged bandit events off-policy evaluation (ope.ts) runs on: joined feedback that carries
 * an action (it copied model, version, propensity and action from its decision, migration 006),
 * with the decision's features as the context when the route logged them.
 */
import { contextOf } from './decision.js';
import { SluiceError } from '../errors.js';
import { checkName } from '../names.js';
import type { Queryable } from '../registry/db.js';
import type { LoggedEvent } from './ope.js';

export interface LoadOptions {
  /** Only decisions this version made. */
  version?: string;
  /** Decided at or after this time (ms since the epoch). */
  since?: number;
  /** Decided before this time (ms since the epoch). */
  until?: number;
  /** At most this many events, the most recent ones (default DEFAULT_LIMIT). */
  limit?: number;
}

/** Bounds memory: an event with 100 features holds ~0.5 kB. */
export const DEFAULT_LIMIT = 100_000;
export const MAX_LIMIT = 1_000_000;

interface EventRow {
  action: number;
  propensity: number;
  reward: number;
  features: number[] | null;
  context: Uint8Array | null;
}

function checkOptions(o: LoadOptions): void {
  if (o.version !== undefined) checkName(o.version, 'version');
  for (const [k, v] of [['since', o.since], ['until', o.until]] as const) {
    if (v !== undefined && !Number.isFinite(v)) throw new SluiceError('INVALID_ARGUMENT', `${k} must be a time in ms since the epoch`);
  }
  if (o.limit !== undefined && !(Number.isInteger(o.limit) && o.limit >= 1 && o.limit <= MAX_LIMIT)) {
    throw new SluiceError('INVALID_ARGUMENT', `limit must be an integer in [1, ${MAX_LIMIT}]`);
  }
}

/**
 * The model's logged bandit events, oldest first, and its number of arms as the logs show it
 * (largest action + 1; 0 when there are none, which evaluatePolicy refuses with
 * NO_LOGGED_EVENTS). With `limit`, the most recent events in the range.
 */
export async function loadLoggedEvents(db: Queryable, model: string, opts: LoadOptions = {}): Promise<{ events: LoggedEvent[]; arms: number }> {
  checkName(model, 'model name');
  checkOptions(opts);
  // Newest first so LIMIT keeps the most recent; the time range is the decisions' (decided_at).
  // Feedback keeps its decision's context (migration 012); feedback stored otherwise (rows
  // inserted by hand, or before the older real[] `features`) takes its decision's.
  const rows = await db.query<EventRow & Record<string, unknown>>(
    `SELECT f.action, f.propensity, f.reward, d.features, coalesce(f.context, d.context) AS context
       FROM feedback_events f
       LEFT JOIN decisions d ON f.context IS NULL AND d.event_id = f.event_id
      WHERE f.model = $1 AND f.joined AND f.action IS NOT NULL
        AND ($2::text IS NULL OR f.version = $2::text)
        AND ($3::float8 IS NULL OR f.decided_at >= to_timestamp($3::float8 / 1000))
        AND ($4::float8 IS NULL OR f.decided_at < to_timestamp($4::float8 / 1000))
      ORDER BY f.decided_at DESC, f.event_id DESC
      LIMIT $5`,
    [model, opts.version ?? null, opts.since ?? null, opts.until ?? null, opts.limit ?? DEFAULT_LIMIT],
  );
  const events: LoggedEvent[] = new Array(rows.length);
  let arms = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[rows.length - 1 - i]!;
    const e: LoggedEvent = { action: Number(r.action), propensity: Number(r.propensity), reward: Number(r.reward) };
    const context = contextOf(r.context, r.features);
    if (context && context.length > 0) e.context = context;
    events[i] = e;
    arms = Math.max(arms, e.action + 1);
  }
  return { events, arms };
}
