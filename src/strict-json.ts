/**
 * Reading API JSON strictly: objects only where objects belong, own fields only (JSON.parse makes
 * `__proto__` an own field: never inherited), and no field the reader does not know, so that an
 * operator's typo ("varaints") is an error naming it, never a silently different request. Each
 * reader passes the error it answers with (ROUTE_INVALID, EXPERIMENT_INVALID, ...).
 */
import type { SluiceError } from './errors.js';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The object's own field `key` (undefined when absent or inherited). */
export function own(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** `v` as an object with only `known` fields; `invalid(message)` names the fault otherwise. */
export function objectWith(v: unknown, what: string, known: readonly string[], invalid: (message: string) => SluiceError): Record<string, unknown> {
  if (!isObject(v)) throw invalid(`${what} must be a JSON object`);
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) throw invalid(`${what} has an unknown field ${JSON.stringify(k.slice(0, 64))} (known: ${known.join(', ')})`);
  }
  return v;
}

/** The free-text field `key` (a reason, a name): absent, or a non-empty string of at most 4096 characters. */
export function optionalText(o: Record<string, unknown>, key: string, invalid: (message: string) => SluiceError): string | undefined {
  const v = own(o, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '' || v.length > 4096) throw invalid(`${key} must be a non-empty string of at most 4096 characters`);
  return v;
}
