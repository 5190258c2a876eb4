/**
 * Watermarks say which replica deltas a learned state includes: {replica: highest seq merged}.
 * Checkpoints record them (checkpoints.ts); replicas pull above them (deltas.ts).
 */
import { SluiceError } from '../errors.js';

export type Watermarks = Record<string, number>;

/** Returns `w` if it is an object of replica names (1-256 characters) to whole numbers >= 0. */
export function checkWatermarks(w: unknown, what = 'watermarks'): Watermarks {
  if (w === null || typeof w !== 'object' || Array.isArray(w)) throw new SluiceError('INVALID_ARGUMENT', `${what} must be an object {replica: seq}`);
  for (const [k, v] of Object.entries(w)) {
    if (k.length === 0 || k.length > 256) throw new SluiceError('INVALID_ARGUMENT', `${what}: a replica name must have 1-256 characters`);
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw new SluiceError('INVALID_ARGUMENT', `${what}[${k}] must be a whole number >= 0`);
  }
  return w as Watermarks;
}
