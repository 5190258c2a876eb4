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
import { scanJsonNumberArrays } from '../../native.js';

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
  checkBody(bytes, maxDepth);
  return parseText(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
}

function checkBody(bytes: Uint8Array, maxDepth: number): void {
  if (!isUtf8(bytes)) throw new SluiceError('INVALID_UTF8', 'request body is not valid UTF-8');
  checkDepth(bytes, maxDepth);
}

function parseText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SluiceError('MALFORMED_REQUEST', `request body is not valid JSON: ${(e as Error).message.slice(0, 120)}`);
  }
}

/**
 * The numbers of a tensor `data` array that parseInferJson parsed natively, given the value that
 * stands for it in the document; undefined for any other value.
 */
export type NativeNumbers = (v: unknown) => Float64Array | undefined;

export interface InferJson {
  doc: unknown;
  /** Valid until the next parseInferJson call (the values live in a reused buffer). */
  numbers: NativeNumbers;
}

/** Arrays shorter than this stay with JSON.parse: replacing them saves less than it costs. */
const MIN_NATIVE_ELEMENTS = 8;
/** Larger JSON bodies go to JSON.parse alone, which keeps the reused buffers below small. */
const MAX_NATIVE_BODY = 1024 * 1024;
let spans = new Uint32Array(4 * 64);
let values = new Float64Array(4096);
const noNumbers: NativeNumbers = () => undefined;
let nativeEnabled = true;

/** Turns the native data parsing off or on (for tests and benchmarks that compare the two). */
export function setNativeJson(enabled: boolean): void {
  nativeEnabled = enabled;
}

/**
 * parseJsonBody for an inference request, with its tensor data parsed natively: the number
 * arrays at `inputs[*].data` (native/src/json_numbers.rs) are replaced in the text by
 * placeholder strings (U+0000 and an index; the scanner refuses bodies containing U+0000, so no
 * client string can look like one), JSON.parse builds the small rest, and `numbers` maps a
 * placeholder to its values: exactly the doubles JSON.parse would have made. Whatever the
 * scanner is unsure of goes to plain JSON.parse, so errors are unchanged.
 */
export function parseInferJson(bytes: Uint8Array, maxDepth: number): InferJson {
  checkBody(bytes, maxDepth);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!nativeEnabled || bytes.byteLength > MAX_NATIVE_BODY) return { doc: parseText(buf.toString('utf8')), numbers: noNumbers };
  // A number takes at least one byte and a separator: at most (n + 1) / 2 of them.
  const most = (bytes.byteLength + 1) >>> 1;
  if (values.length < most) values = new Float64Array(Math.max(most, values.length * 2));
  let k = scanJsonNumberArrays(bytes, MIN_NATIVE_ELEMENTS, spans, values);
  while (k === -2 && spans.length < 4 * bytes.byteLength) {
    spans = new Uint32Array(spans.length * 4);
    k = scanJsonNumberArrays(bytes, MIN_NATIVE_ELEMENTS, spans, values);
  }
  if (k <= 0) return { doc: parseText(buf.toString('utf8')), numbers: noNumbers };
  let text = '';
  let at = 0;
  for (let j = 0; j < k; j++) {
    text += buf.toString('utf8', at, spans[4 * j]) + '"\\u0000' + j + '"';
    at = spans[4 * j + 1]!;
  }
  text += buf.toString('utf8', at);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // The error JSON.parse gives for the body as sent (positions in the rewritten text differ).
    return { doc: parseText(buf.toString('utf8')), numbers: noNumbers };
  }
  const found = spans;
  const vals = values;
  return {
    doc,
    numbers: (v) => {
      if (typeof v !== 'string' || v.charCodeAt(0) !== 0) return undefined;
      const j = Number(v.slice(1));
      if (!(j >= 0 && j < k)) return undefined;
      const first = found[4 * j + 2]!;
      return vals.subarray(first, first + found[4 * j + 3]!);
    },
  };
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
