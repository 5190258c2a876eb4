/**
 * Checks on what callers hand the registry. Free text (notes, tags, reasons, actors) is stored
 * verbatim and only ever travels as a query parameter, so any characters are harmless; the
 * limits here are about size and about NUL, which PostgreSQL text cannot hold.
 */
import { SluiceError } from '../errors.js';
import { checkName } from '../names.js';

function bad(what: string): SluiceError {
  return new SluiceError('INVALID_ARGUMENT', what);
}

export function text(v: unknown, field: string, maxLength: number, { allowEmpty = true } = {}): string {
  if (typeof v !== 'string') throw bad(`${field} must be a string`);
  if (!allowEmpty && v.length === 0) throw bad(`${field} must not be empty`);
  if (v.length > maxLength) throw bad(`${field} is longer than ${maxLength} characters`);
  if (v.includes('\u0000')) throw bad(`${field} must not contain NUL characters`);
  return v;
}

export function optionalText(v: unknown, field: string, maxLength: number): string {
  return v === undefined ? '' : text(v, field, maxLength);
}

export function actor(v: unknown): string {
  return text(v, 'actor', 128, { allowEmpty: false });
}

/** Model names and versions: the one naming rule (src/names.ts), NAME_INVALID unless from a manifest. */
export function modelName(v: unknown, code: 'NAME_INVALID' | 'MANIFEST_INVALID' = 'NAME_INVALID'): string {
  return checkName(v, 'model name', code);
}

export function versionName(v: unknown, code: 'NAME_INVALID' | 'MANIFEST_INVALID' = 'NAME_INVALID'): string {
  return checkName(v, 'version', code);
}

/** A JSON object (plain data, size-bounded) for training config, hyperparameters, metrics. */
export function jsonObject(v: unknown, field: string, maxBytes = 256 * 1024): Record<string, unknown> {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${field} must be a JSON object`);
  let json: string;
  try {
    json = JSON.stringify(v);
  } catch {
    throw bad(`${field} must be plain JSON data`);
  }
  if (json.length > maxBytes) throw bad(`${field} is larger than ${maxBytes} bytes of JSON`);
  if (json.includes('\\u0000')) throw bad(`${field} must not contain NUL characters`);
  return JSON.parse(json) as Record<string, unknown>;
}

export function tags(v: unknown): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 64) throw bad('tags must be an array of at most 64 strings');
  return v.map((t, i) => text(t, `tags[${i}]`, 256, { allowEmpty: false }));
}

export function cvScores(v: unknown): number[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 10_000 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw bad('cvScores must be an array of finite numbers');
  }
  return v as number[];
}

export function optionalNumber(v: unknown, field: string, min: number, max = Number.MAX_VALUE): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw bad(`${field} must be a number in [${min}, ${max}]`);
  return v;
}
