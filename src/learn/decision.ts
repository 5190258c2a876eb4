/**
 * A decision: which variant (and so which version) the route in force chose for one request,
 * with the probability it had of choosing it. Logged for every routed answer (decision-log.ts)
 * and joined to the feedback that arrives later (feedback.ts); bandits and off-policy
 * evaluation also need the input features, logged only when the route asks for them.
 */
import { isValidEventId, isValidUnitId } from './event-id.js';

export interface Decision {
  /** UUIDv7 normally (time-ordered); clients may supply their own ids (event-id.ts says which). */
  eventId: string;
  /** When decided, ms since the epoch. */
  at: number;
  model: string;
  variant: string;
  version: string;
  unitId?: string;
  /** The probability that the route in force chose this variant for this request: (0, 1]. */
  propensity: number;
  /** The route generation in force. */
  routeGen: number;
  /** Only when the route logs features (always for a learned model's decisions: its context). */
  features?: Float32Array | number[];
  /** A bandit model's decision: the arm it chose (0-based); absent for a route's choice alone. */
  action?: number;
}

/** Why a decision cannot be stored (a row the database would refuse), or undefined when it can. */
export function decisionProblem(d: Decision): string | undefined {
  if (!isValidEventId(d.eventId)) return 'bad event id';
  if (!Number.isFinite(d.at)) return 'bad time';
  if (typeof d.model !== 'string' || typeof d.variant !== 'string' || typeof d.version !== 'string') return 'bad model, variant or version';
  if (d.unitId !== undefined && !isValidUnitId(d.unitId)) return 'bad unit id';
  if (!(d.propensity > 0 && d.propensity <= 1)) return 'propensity outside (0, 1]';
  if (!Number.isSafeInteger(d.routeGen)) return 'bad route generation';
  if (d.features !== undefined && !(d.features instanceof Float32Array) && !Array.isArray(d.features)) return 'bad features';
  if (d.action !== undefined && !(Number.isInteger(d.action) && d.action >= 0 && d.action < 2 ** 31)) return 'bad action';
  return undefined;
}

/*
 * Features are stored in the `context` column (migration 006) as their float32 bytes,
 * little-endian: exact, NaN and infinities included. The `real[]` column `features` of
 * migration 003 took a text literal PostgreSQL parsed number by number: ~180 us of the embedded
 * database's time per row of 100 features against ~25 us for these bytes as base64 text
 * (2026-12-02), ~15 us as a binary bytea[] parameter (2026-12-03; src/learn/decision-chunk.ts).
 */

/** Features from a row: the `context` bytes (float32, little-endian), else the older `features` real[]. */
export function contextOf(context: Uint8Array | null | undefined, features?: ArrayLike<number | string> | null): Float32Array | undefined {
  if (context !== null && context !== undefined) {
    // A copy: the driver's bytes may sit at an offset no Float32Array can start at.
    const bytes = Uint8Array.from(context);
    return new Float32Array(bytes.buffer, 0, bytes.byteLength >> 2);
  }
  if (features !== null && features !== undefined) return Float32Array.from(features as ArrayLike<number>, Number);
  return undefined;
}

/** The columns a decision is selected with (see rowToDecision). */
export const DECISION_COLUMNS = `event_id, round(extract(epoch FROM at) * 1000)::float8 AS at_ms, model, variant, version, unit_id, propensity, route_gen::float8 AS route_gen, features, context, action`;

export interface DecisionRow {
  event_id: string;
  at_ms: number;
  model: string;
  variant: string;
  version: string;
  unit_id: string | null;
  propensity: number;
  route_gen: number;
  features: number[] | null;
  context: Uint8Array | null;
  action: number | null;
}

export function rowToDecision(r: DecisionRow): Decision {
  const d: Decision = {
    eventId: r.event_id,
    at: Number(r.at_ms),
    model: r.model,
    variant: r.variant,
    version: r.version,
    propensity: Number(r.propensity),
    routeGen: Number(r.route_gen),
  };
  if (r.unit_id !== null) d.unitId = r.unit_id;
  const features = contextOf(r.context, r.features);
  if (features) d.features = features;
  if (r.action !== null && r.action !== undefined) d.action = Number(r.action);
  return d;
}
