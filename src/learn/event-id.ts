/**
 * Event ids: the key that joins a decision to its feedback. Sluice makes UUIDv7s (RFC 9562:
 * 48 bits of Unix milliseconds, then random bits), so ids sort by time and carry the time of
 * their decision, which lets feedback be checked against the join window even while the
 * database is away. Clients may supply ids of their own: any string of 1 to 128 characters
 * without control characters (PostgreSQL text refuses NUL; the rest would only hurt logs).
 */
import { v7 as uuidv7 } from 'uuid';

export const MAX_EVENT_ID_LENGTH = 128;

/** A new UUIDv7 (monotonic within this process, as the `uuid` package guarantees). */
export function newEventId(): string {
  return uuidv7();
}

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The decision time (ms since the epoch) a UUIDv7 carries; undefined for any other id. */
export function eventIdTime(id: string): number | undefined {
  if (id.length !== 36 || !V7.test(id)) return undefined;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** Whether `id` may be an event id (Sluice's or a client's). */
export function isValidEventId(id: unknown): id is string {
  return typeof id === 'string' && id.length >= 1 && id.length <= MAX_EVENT_ID_LENGTH && !CONTROL.test(id);
}

/** Same rule for unit ids (also client text that lands in a database column). */
export function isValidUnitId(id: unknown): id is string {
  return isValidEventId(id);
}
