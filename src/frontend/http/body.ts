/**
 * Reading a request body from uWebSockets.js: each chunk is copied exactly once, into one
 * buffer sized from Content-Length, and reading stops as soon as the limit is passed (the
 * response then closes the connection, so the rest is never read).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { SluiceError } from '../../errors.js';
import type { BodyPool } from './body-pool.js';

/**
 * Reads the body of `res`. `pad` bytes are reserved in front of it in the buffer, so that a
 * caller can place a later part of the body at an aligned address (see the binary extension).
 * Exactly one of `done` and `fail` is called. With a `pool`, a body with a Content-Length
 * is read into a reused buffer, and `done`'s `release` must be called once nothing refers to
 * the body any more (never calling it only costs the reuse).
 *
 * `gate` is the request's authorization when it is still a promise: until it settles the socket
 * is paused, so nothing past what uWS had already read with the headers is read (those bytes
 * are kept in small copies and no body buffer is allocated); a refusal fails the exchange
 * (the caller then closes the connection) without reading any more of it.
 */
export function readBody(
  res: HttpResponse,
  contentLength: number | undefined,
  maxBytes: number,
  pad: number,
  done: (body: Uint8Array, release: () => void) => void,
  fail: (e: SluiceError) => void,
  pool?: BodyPool,
  gate?: Promise<unknown>,
  hold?: { pause(): void; resume(): boolean },
): void {
  if (gate) return readGated(res, contentLength, maxBytes, pad, done, fail, pool, gate, hold);
  if (contentLength !== undefined && contentLength > maxBytes) return fail(tooLarge(contentLength, maxBytes));
  res.onData(reader(contentLength, maxBytes, pad, done, fail, pool));
}

function tooLarge(contentLength: number, maxBytes: number): SluiceError {
  return new SluiceError('PAYLOAD_TOO_LARGE', `body of ${contentLength} bytes exceeds the limit of ${maxBytes}`);
}

/** The onData handler that copies each chunk once into a buffer sized from Content-Length. */
function reader(
  contentLength: number | undefined,
  maxBytes: number,
  pad: number,
  done: (body: Uint8Array, release: () => void) => void,
  fail: (e: SluiceError) => void,
  pool: BodyPool | undefined,
): (chunk: ArrayBuffer, isLast: boolean) => void {
  const first = pool && contentLength !== undefined ? pool.take(pad + contentLength) : { buf: Buffer.allocUnsafe(pad + (contentLength ?? 16 * 1024)), pooled: false };
  let buf = first.buf;
  let length = 0;
  let failed = false;
  return (chunk, isLast) => {
    if (failed) return;
    const bytes = new Uint8Array(chunk);
    if (length + bytes.byteLength > maxBytes) {
      failed = true;
      fail(new SluiceError('PAYLOAD_TOO_LARGE', `body exceeds the limit of ${maxBytes} bytes`));
      return;
    }
    if (pad + length + bytes.byteLength > buf.byteLength) {
      // Only without (or with a wrong) Content-Length: grow geometrically.
      const grown = Buffer.allocUnsafe(Math.min(pad + maxBytes, Math.max(buf.byteLength * 2, pad + length + bytes.byteLength)));
      buf.copy(grown, 0, 0, pad + length);
      buf = grown;
    }
    buf.set(bytes, pad + length);
    length += bytes.byteLength;
    if (!isLast) return;
    // Only the buffer taken from the pool goes back (a grown one is garbage-collected).
    const lent = first.pooled && buf === first.buf ? buf : undefined;
    done(buf.subarray(pad, pad + length), lent ? () => pool!.give(lent) : noop);
  };
}

/**
 * readBody behind a pending gate: the socket is paused, the chunks uWS had already read are
 * copied aside (no body buffer yet), and the size is judged only once the gate has let the
 * request through (an unauthorized client learns nothing from it).
 */
function readGated(
  res: HttpResponse,
  contentLength: number | undefined,
  maxBytes: number,
  pad: number,
  done: (body: Uint8Array, release: () => void) => void,
  fail: (e: SluiceError) => void,
  pool: BodyPool | undefined,
  gate: Promise<unknown>,
  hold: { pause(): void; resume(): boolean } | undefined,
): void {
  let early: ArrayBuffer[] | undefined = [];
  let ended = false;
  let settled = false;
  let read: ((chunk: ArrayBuffer, isLast: boolean) => void) | undefined;
  hold?.pause();
  gate.then(
    () => {
      if (settled) return;
      settled = true;
      const chunks = early!;
      early = undefined;
      if (contentLength !== undefined && contentLength > maxBytes) return fail(tooLarge(contentLength, maxBytes));
      if (hold && !hold.resume()) return;
      read = reader(contentLength, maxBytes, pad, done, fail, pool);
      if (chunks.length === 0 && ended) read(new ArrayBuffer(0), true);
      chunks.forEach((c, i) => read!(c, ended && i === chunks.length - 1));
    },
    (e: unknown) => {
      if (settled) return;
      settled = true;
      early = undefined;
      fail(e as SluiceError);
    },
  );
  res.onData((chunk, isLast) => {
    if (read) return read(chunk, isLast);
    if (!early) return;
    // Bounded by what uWS read along with the headers: the socket is paused.
    early.push(chunk.slice(0));
    if (isLast) ended = true;
  });
}

function noop(): void {}
