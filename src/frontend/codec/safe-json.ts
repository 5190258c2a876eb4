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
import { JSON_LAYOUT, scanJsonNumberArrays } from '../../native.js';

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
/** Room for the plain-form layout of up to 16 inputs (more simply take the JSON.parse path). */
const layout = new Uint32Array(JSON_LAYOUT.head + 16 * JSON_LAYOUT.input);
/** The placeholder strings for the first natively parsed arrays, made once. */
const PLACEHOLDERS = Array.from({ length: 64 }, (_, j) => '\u0000' + j);
const noNumbers: NativeNumbers = () => undefined;
let nativeEnabled = true;

/** How many bodies took each path since start (tests check that each path is exercised). */
export const nativeJsonPaths = { plain: 0, rewritten: 0, whole: 0 };

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
 * scanner is unsure of goes to plain JSON.parse, so errors are unchanged. A request in the plain
 * form nearly every client sends (no parameters, outputs or escapes) skips JSON.parse entirely:
 * the scanner also says where its few strings and dimensions are, and the same document is built
 * from those (JSON.parse of the ~100-byte rest cost ~4 us per request in a server profile).
 */
export function parseInferJson(bytes: Uint8Array, maxDepth: number): InferJson {
  checkBody(bytes, maxDepth);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!nativeEnabled || bytes.byteLength > MAX_NATIVE_BODY) return whole(buf);
  // A number takes at least one byte and a separator: at most (n + 1) / 2 of them.
  const most = (bytes.byteLength + 1) >>> 1;
  if (values.length < most) values = new Float64Array(Math.max(most, values.length * 2));
  let k = scanJsonNumberArrays(bytes, MIN_NATIVE_ELEMENTS, spans, values, layout);
  while (k === -2 && spans.length < 4 * bytes.byteLength) {
    spans = new Uint32Array(spans.length * 4);
    k = scanJsonNumberArrays(bytes, MIN_NATIVE_ELEMENTS, spans, values, layout);
  }
  if (k <= 0) return whole(buf);
  let doc: unknown;
  if (layout[0] === 1) {
    // Plain form: the document JSON.parse would build, built from the layout directly.
    nativeJsonPaths.plain++;
    doc = plainDocument(buf);
  } else {
    nativeJsonPaths.rewritten++;
    let text = '';
    let at = 0;
    for (let j = 0; j < k; j++) {
      text += buf.toString('utf8', at, spans[4 * j]) + '"\\u0000' + j + '"';
      at = spans[4 * j + 1]!;
    }
    text += buf.toString('utf8', at);
    try {
      doc = JSON.parse(text);
    } catch {
      // The error JSON.parse gives for the body as sent (positions in the rewritten text differ).
      return whole(buf);
    }
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

/** The body parsed by JSON.parse alone. */
function whole(buf: Buffer): InferJson {
  nativeJsonPaths.whole++;
  return { doc: parseText(buf.toString('utf8')), numbers: noNumbers };
}

function placeholder(j: number): string {
  return j < PLACEHOLDERS.length ? PLACEHOLDERS[j]! : '\u0000' + j;
}

/**
 * The document of a plain-form request (see scanJsonNumberArrays): `{id?, inputs: [{name,
 * datatype, shape, data}]}` with each data array's placeholder, exactly what JSON.parse makes of
 * the rewritten text. Its strings have no escapes, so their bytes are their text.
 */
function plainDocument(buf: Buffer): Record<string, unknown> {
  const n = layout[4]!;
  const inputs = new Array<Record<string, unknown>>(n);
  for (let i = 0; i < n; i++) {
    const at = JSON_LAYOUT.head + i * JSON_LAYOUT.input;
    const dims = layout[at + 5]!;
    const shape: number[] = [];
    for (let d = 0; d < dims; d++) shape.push(layout[at + 6 + d]!);
    inputs[i] = {
      name: buf.toString('utf8', layout[at], layout[at + 1]),
      datatype: buf.toString('utf8', layout[at + 2], layout[at + 3]),
      shape,
      data: placeholder(layout[at + 4]!),
    };
  }
  return layout[1] === 1 ? { id: buf.toString('utf8', layout[2], layout[3]), inputs } : { inputs };
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
