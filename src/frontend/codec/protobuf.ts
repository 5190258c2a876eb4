/**
 * A small protobuf wire-format reader and writer, for the inference messages on the hot path
 * (ModelInferRequest in, ModelInferResponse out): tensors go straight from the wire to typed
 * arrays and back without an intermediate object per element. Every read is bounds-checked, so
 * truncated or malformed input is a coded MALFORMED_REQUEST, never a crash or an overread.
 */
import { isUtf8 } from 'node:buffer';
import { SluiceError } from '../../errors.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_FIXED32 = 5;

function malformed(what: string): SluiceError {
  return new SluiceError('MALFORMED_REQUEST', `malformed protobuf: ${what}`);
}

export class Reader {
  pos: number;

  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.byteLength) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** An unsigned varint that fits in 2^53 (lengths, tags, most integers). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed('truncated varint');
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (result > Number.MAX_SAFE_INTEGER) throw malformed('varint beyond 2^53');
        return result;
      }
      mul *= 128;
    }
    throw malformed('varint longer than 10 bytes');
  }

  /** A full 64-bit varint as a BigInt (two's complement when `signed`). */
  varint64(signed: boolean): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return signed ? BigInt.asIntN(64, result) : BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw malformed('varint longer than 10 bytes');
  }

  /** An int32 / int64 field that must fit a JS number exactly (negative ints are 10-byte varints). */
  int(): number {
    const v = this.varint64(true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw malformed('integer beyond 2^53');
    return Number(v);
  }

  tag(): [field: number, wire: number] {
    const t = this.varint();
    return [Math.floor(t / 8), t & 7];
  }

  /** A length-delimited field's length, checked against what is left of the message. */
  private length(): number {
    const n = this.varint();
    if (n > this.end - this.pos) throw malformed('length runs past the end of the message');
    return n;
  }

  /** A length-delimited field's bytes, as a view (no copy). */
  bytes(): Uint8Array {
    const n = this.length();
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /**
   * A length-delimited field (a nested message or packed values) as a reader bounded to it, over
   * the same bytes: its reads cannot run into what follows the field.
   */
  sub(): Reader {
    const n = this.length();
    const r = new Reader(this.buf, this.pos, this.pos + n);
    r.dv = this.dv;
    this.pos += n;
    return r;
  }

  string(): string {
    const b = this.bytes();
    if (!isUtf8(b)) throw new SluiceError('INVALID_UTF8', 'a protobuf string is not valid UTF-8');
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  }

  private dv: DataView | undefined;
  private view(): DataView {
    return (this.dv ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength));
  }

  /** A fixed32 float (little-endian). */
  float32(): number {
    if (this.end - this.pos < 4) throw malformed('truncated fixed32');
    const v = this.view().getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** A fixed64 double (little-endian). */
  float64(): number {
    if (this.end - this.pos < 8) throw malformed('truncated fixed64');
    const v = this.view().getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint64(false);
        return;
      case WIRE_FIXED64:
        if (this.end - this.pos < 8) throw malformed('truncated fixed64');
        this.pos += 8;
        return;
      case WIRE_BYTES:
        this.bytes();
        return;
      case WIRE_FIXED32:
        if (this.end - this.pos < 4) throw malformed('truncated fixed32');
        this.pos += 4;
        return;
      default:
        throw malformed(`unsupported wire type ${wire}`);
    }
  }
}

/** Bytes of `v` as a varint. */
function varintSize(v: number): number {
  let n = 1;
  for (; v > 0x7f; v = Math.floor(v / 128)) n++;
  return n;
}

/** Writes `v` as a varint at `at` (room known to be there); returns the position after it. */
function putVarint(buf: Buffer, at: number, v: number): number {
  while (v > 0x7f) {
    buf[at++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}

/** Growable output buffer with protobuf primitives. */
export class Writer {
  private buf: Buffer;
  private pos: number;

  /**
   * `reserve` bytes are left free in front of what is written, for `finishAsField` to frame it
   * as a field of an outer message without copying it.
   */
  constructor(initial = 256, private readonly reserve = 0) {
    this.buf = Buffer.allocUnsafe(Math.max(initial, reserve));
    this.pos = reserve;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  varint(v: number): this {
    this.ensure(10);
    this.pos = putVarint(this.buf, this.pos, v);
    return this;
  }

  /** int64 as protobuf encodes it: negative values as 10-byte two's complement. */
  int64(v: number): this {
    if (v >= 0) return this.varint(v);
    let x = BigInt.asUintN(64, BigInt(v));
    this.ensure(10);
    for (let i = 0; i < 10; i++) {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      this.buf[this.pos++] = x > 0n ? b | 0x80 : b;
      if (x === 0n) break;
    }
    return this;
  }

  tag(field: number, wire: number): this {
    return this.varint(field * 8 + wire);
  }

  /** A double field (wire type 1: fixed64, little-endian). */
  double(field: number, v: number): this {
    this.tag(field, 1);
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
    return this;
  }

  bytes(field: number, b: Uint8Array): this {
    this.tag(field, WIRE_BYTES).varint(b.byteLength);
    this.ensure(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
    return this;
  }

  string(field: number, s: string): this {
    if (s === '') return this;
    const len = Buffer.byteLength(s);
    this.tag(field, WIRE_BYTES).varint(len);
    this.ensure(len);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += len;
    return this;
  }

  /** A nested message written by `fn`, length-prefixed. */
  message(field: number, fn: (w: Writer) => void): this {
    const inner = new Writer(64);
    fn(inner);
    return this.bytes(field, inner.finish());
  }

  packedInt64(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const inner = new Writer(values.length * 2 + 8);
    for (const v of values) inner.int64(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Buffer {
    return this.buf.subarray(this.reserve, this.pos);
  }

  /**
   * What was written, as length-delimited field `field` of an outer message that holds nothing
   * else: its tag and length go into the reserved room, in place.
   */
  finishAsField(field: number): Buffer {
    const len = this.pos - this.reserve;
    const tag = field * 8 + WIRE_BYTES;
    const start = this.reserve - varintSize(tag) - varintSize(len);
    if (start < 0) throw new Error(`protobuf writer: ${this.reserve} reserved bytes cannot hold the header of field ${field} (${len} bytes)`);
    putVarint(this.buf, putVarint(this.buf, start, tag), len);
    return this.buf.subarray(start, this.pos);
  }
}
