/**
 * PostgreSQL's binary form of a one-dimensional `bytea[]`, which both drivers send as it is for
 * a Buffer parameter: the decision log's chunks and contexts and the feedback rows' contexts go
 * in this way, copied by the database instead of parsed from text (decision-log.ts says why).
 */
import type { SharedPool } from './shared-pool.js';

/**
 * Values as one PostgreSQL binary `bytea[]` value, each written once after its length; in a
 * buffer of `pool`'s when given (the caller gives it back), else in one of its own.
 */
export function bytesArray(items: readonly Uint8Array[], pool?: SharedPool): Buffer {
  let bytes = 0;
  for (const b of items) bytes += 4 + b.byteLength;
  const out = pool === undefined ? Buffer.allocUnsafe(HEADER + bytes) : asBuffer(pool.take(HEADER + bytes));
  let at = writeHeader(out, items.length);
  for (const b of items) {
    at = out.writeInt32BE(b.byteLength, at);
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}

/** A one-dimensional binary `bytea[]` of `n` elements already written (length-prefixed) in `parts`. */
export function byteaArray(n: number, parts: readonly Uint8Array[]): Buffer {
  let bytes = 0;
  for (const p of parts) bytes += p.byteLength;
  const out = Buffer.allocUnsafe(HEADER + bytes);
  let at = writeHeader(out, n);
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

const HEADER = 20;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Header: dimensions, has-nulls flag (array_recv finds NULLs from the lengths itself), element
 * type (bytea, oid 17), then the one dimension's length and lower bound. Returns its end.
 */
function writeHeader(out: Buffer, n: number): number {
  let at = out.writeInt32BE(1, 0);
  at = out.writeInt32BE(1, at);
  at = out.writeInt32BE(17, at);
  at = out.writeInt32BE(n, at);
  return out.writeInt32BE(1, at);
}
