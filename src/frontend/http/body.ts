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
 */
export function readBody(
  res: HttpResponse,
  contentLength: number | undefined,
  maxBytes: number,
  pad: number,
  done: (body: Uint8Array, release: () => void) => void,
  fail: (e: SluiceError) => void,
  pool?: BodyPool,
): void {
  if (contentLength !== undefined && contentLength > maxBytes) {
    fail(new SluiceError('PAYLOAD_TOO_LARGE', `body of ${contentLength} bytes exceeds the limit of ${maxBytes}`));
    return;
  }
  const first = pool && contentLength !== undefined ? pool.take(pad + contentLength) : { buf: Buffer.allocUnsafe(pad + (contentLength ?? 16 * 1024)), pooled: false };
  let buf = first.buf;
  let length = 0;
  let failed = false;
  res.onData((chunk, isLast) => {
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
  });
}

function noop(): void {}
