/**
 * The byte writers a decision chunk is built with (src/learn/decision-chunk.ts): its rows (ASCII
 * JSON, written byte by byte on the request path for the thread's own decisions), its directory and
 * its contexts, each a buffer that grows by doubling and is handed out whole; and jsonAscii,
 * the string encoding that keeps rows ASCII.
 */
import { uuidHex } from './event-id.js';
import type { SharedPool } from './shared-pool.js';

const NON_ASCII = /[^\x00-\x7f]/;
const NON_ASCII_G = /[^\x00-\x7f]/g;
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * A string as JSON with every character beyond ASCII escaped (\uXXXX, surrogate pairs as two):
 * the rows stay ASCII, so a row's offset in the string is its offset in the stored bytes.
 */
export function jsonAscii(s: string): string {
  // Most ids need nothing escaped: printable ASCII without quotes or backslashes.
  if (PLAIN.test(s)) return '"' + s + '"';
  const json = JSON.stringify(s);
  return NON_ASCII.test(json) ? json.replace(NON_ASCII_G, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')) : json;
}

/**
 * A buffer written at its end, growing by doubling; `take` hands out a copy of what was written
 * (in a buffer of `pool`'s when given: a decision chunk's, shared with the threads it goes to and
 * reused once the log is done with it, shared-pool.ts; else in a buffer of its own) and starts
 * afresh in the same buffer.
 */
class GrowingBuffer {
  protected buf: Buffer;
  protected end = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  take(pool?: SharedPool): Uint8Array {
    let out: Uint8Array;
    if (pool === undefined) {
      out = new Uint8Array(this.buf.subarray(0, this.end));
    } else {
      out = pool.take(this.end);
      out.set(this.buf.subarray(0, this.end));
    }
    this.end = 0;
    return out;
  }

  /** Makes room for `n` more bytes. */
  protected room(n: number): void {
    if (this.end + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.end + n));
    this.buf.copy(bigger, 0, 0, this.end);
    this.buf = bigger;
  }
}

/**
 * The rows (DecisionChunk.rows): ASCII rows, comma-separated, written into a buffer that grows
 * by doubling, row by row. Concatenating them as one string instead and writing it out once
 * per chunk cost more: V8 keeps the concatenation as a rope of every row's parts and flattens
 * it on the write (I/O-thread CPU profiles of the routed phase of `npm run bench -- routing`'s
 * load, single runs, 2026-12-03: 84 ms of latin1 writes, against 54-68 ms row by row).
 */
export class RowsWriter extends GrowingBuffer {
  constructor() {
    super(64 * 1024);
  }

  /** The last propensity written by addOwn and its text (a routed variant's is the same each time). */
  private p = NaN;
  private pText = '';

  /** Appends a row (after a comma, unless it is the first); returns its byte offset. */
  add(row: string): number {
    this.room(row.length + 1);
    if (this.end > 0) this.buf[this.end++] = 0x2c; // ','
    const at = this.end;
    this.end += this.buf.write(row, at, 'latin1');
    return at;
  }

  /**
   * Appends the short row (decision-chunk.ts ownRowText) of a decision whose event id is in the
   * chunk's directory and whose time is the one its id carries: the variant's index in the
   * chunk's `variants` and what differs per decision, byte by byte, with no string built for
   * it (building the row as a string and writing it out was ~1 µs per routed request: rope,
   * number formatting, latin1 write; I/O-thread CPU profiles of `npm run bench -- routing`,
   * 2026-12-03). Same bytes as add(ownRowText(...)): test/learn/decision-chunk.test.ts compares them.
   */
  addOwn(variant: number, propensity: number, unitId: string | undefined, action: number | undefined, contextAt: number, features: ArrayLike<number> | undefined): number {
    if (propensity !== this.p || this.pText === '') {
      this.p = propensity;
      this.pText = String(propensity);
    }
    // At most: the fixed parts (~80 bytes, 16 digits per integer) and a unit id escaped to
    // \uXXXX per character.
    this.room(128 + this.pText.length + (unitId === undefined ? 0 : 6 * unitId.length));
    const b = this.buf;
    let i = this.end;
    if (i > 0) b[i++] = 0x2c; // ','
    const start = i;
    i = digits(b, ascii(b, i, '{"x":'), variant);
    i = ascii(b, ascii(b, i, ',"p":'), this.pText);
    if (action !== undefined) i = ascii(b, ascii(b, i, ',"k":'), String(action));
    if (unitId !== undefined) {
      i = ascii(b, i, ',"u":');
      const plainEnd = plainAscii(b, i + 1, unitId);
      if (plainEnd >= 0) {
        b[i] = b[plainEnd] = 0x22; // the quotes
        i = plainEnd + 1;
      } else {
        i = ascii(b, i, jsonAscii(unitId));
      }
    }
    if (contextAt >= 0) {
      i = digits(b, ascii(b, i, ',"o":'), contextAt);
      i = digits(b, ascii(b, i, ',"l":'), features!.length * 4);
    }
    b[i++] = 0x7d; // '}'
    this.end = i;
    return start;
  }
}

/** Writes an ASCII string's characters at `i`; returns the end. */
function ascii(b: Uint8Array, i: number, s: string): number {
  for (let k = 0; k < s.length; k++) b[i++] = s.charCodeAt(k);
  return i;
}

/**
 * Writes `s` at `i` if it needs no escaping in JSON and is ASCII (printable, no quote or
 * backslash: most ids); returns the end, or -1 (what was written is garbage to overwrite).
 */
function plainAscii(b: Uint8Array, i: number, s: string): number {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return -1;
    b[i++] = c;
  }
  return i;
}

/** Writes a safe integer >= 0 in decimal at `i`; returns the end. */
function digits(b: Uint8Array, i: number, x: number): number {
  let n = 1;
  for (let y = x; y >= 10; y = Math.floor(y / 10)) n++;
  const end = i + n;
  for (let k = end - 1; k >= i; k--) {
    const q = Math.floor(x / 10);
    b[k] = 0x30 + (x - q * 10);
    x = q;
  }
  return end;
}

/** An ASCII string's bytes, in a buffer of their own. */
export function asciiBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  Buffer.from(out.buffer).write(s, 0, 'latin1');
  return out;
}

/** The rows' directory (DecisionChunk.dir), 20 bytes per row. */
export class DirWriter extends GrowingBuffer {
  constructor() {
    super(20 * 256);
  }

  /**
   * A UUIDv7's 16 bytes (`bytes` when the caller has them, else parsed from the id; an id of
   * another form: zeros, which no lookup searches for) and the row's offset.
   */
  add(eventId: string, rowAt: number, bytes?: Uint8Array): void {
    this.room(20);
    if (bytes !== undefined) this.buf.set(bytes, this.end);
    else if (this.buf.write(uuidHex(eventId), this.end, 16, 'hex') !== 16) this.buf.fill(0, this.end, this.end + 16);
    this.buf.writeUInt32BE(rowAt, this.end + 16);
    this.end += 20;
  }
}

/** Appends contexts as binary array elements to a buffer that grows by doubling. */
export class ContextWriter extends GrowingBuffer {
  constructor() {
    super(1024);
  }

  /** Appends an element; returns where its bytes start (after its length), -1 for none. */
  add(features: Float32Array | number[] | undefined): number {
    if (features === undefined) {
      this.room(4);
      this.end = this.buf.writeInt32BE(-1, this.end);
      return -1;
    }
    const f = features instanceof Float32Array ? features : Float32Array.from(features);
    this.room(4 + f.byteLength);
    this.end = this.buf.writeInt32BE(f.byteLength, this.end);
    const at = this.end;
    this.buf.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), this.end);
    this.end += f.byteLength;
    return at;
  }
}
