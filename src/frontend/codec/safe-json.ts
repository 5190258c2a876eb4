/**
 * Request-body JSON: checked for UTF-8, bounded in nesting depth, then parsed.
 *
 * JSON.parse has no depth limit and would happily build a 100,000-deep array; a linear scan
 * of the bytes (skipping strings) bounds it first, at ~1 ns per byte. Keys such as `__proto__`
 * or `constructor` become plain own properties under JSON.parse and Sluice only ever reads the
 * fields it knows, never merges request objects into others, so they cannot pollute prototypes.
 */
import { isUtf8 } from 'node:buffer';
import { SluiceError } from '../../errors.js';

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Throws JSON_TOO_DEEP when `bytes` nests objects/arrays deeper than `maxDepth`. */
export function checkDepth(bytes: Uint8Array, maxDepth: number): void {
  // Fast path: a body with no more opening brackets than the limit cannot nest deeper than it
  // (brackets inside strings only make the count larger). indexOf is a native memchr, so a
  // typical inference request skips the byte-by-byte scan.
  let opens = 0;
  for (let i = bytes.indexOf(OPEN_BRACKET); i !== -1 && opens <= maxDepth; i = bytes.indexOf(OPEN_BRACKET, i + 1)) opens++;
  for (let i = bytes.indexOf(OPEN_BRACE); i !== -1 && opens <= maxDepth; i = bytes.indexOf(OPEN_BRACE, i + 1)) opens++;
  if (opens <= maxDepth) return;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) throw new SluiceError('JSON_TOO_DEEP', `JSON nests deeper than ${maxDepth} levels`);
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
}

/** Parses a JSON body: UTF-8 checked, depth bounded; throws coded errors. */
export function parseJsonBody(bytes: Uint8Array, maxDepth: number): unknown {
  if (!isUtf8(bytes)) throw new SluiceError('INVALID_UTF8', 'request body is not valid UTF-8');
  checkDepth(bytes, maxDepth);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SluiceError('MALFORMED_REQUEST', `request body is not valid JSON: ${(e as Error).message.slice(0, 120)}`);
  }
}

/** The value as a plain object (not an array or null), or a coded error naming `what`. */
export function asObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SluiceError('INVALID_ARGUMENT', `${what} must be a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** Reads an own property only (never one inherited through a prototype). */
export function own(o: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}
