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
  const tooLarge = () => contentLength !== undefined && contentLength > maxBytes;
  const refuse = () => fail(new SluiceError('PAYLOAD_TOO_LARGE', `body of ${contentLength} bytes exceeds the limit of ${maxBytes}`));
  // Behind a gate, the size is judged only once the gate has let the request through: an
  // unauthorized client learns nothing from it.
  if (!gate && tooLarge()) return refuse();
  let buf: Buffer | undefined;
  let pooled = false;
  let length = 0;
  let failed = false;
  // While the gate is shut: chunks already read, copied (uWS reuses their memory), and the end.
  let early: Buffer[] | undefined;
  let earlyEnded = false;

  const open = () => {
    const first = pool && contentLength !== undefined ? pool.take(pad + contentLength) : { buf: Buffer.allocUnsafe(pad + (contentLength ?? 16 * 1024)), pooled: false };
    buf = first.buf;
    pooled = first.pooled;
  };
  const take = (bytes: Uint8Array, isLast: boolean) => {
    if (failed) return;
    if (length + bytes.byteLength > maxBytes) {
      failed = true;
      fail(new SluiceError('PAYLOAD_TOO_LARGE', `body exceeds the limit of ${maxBytes} bytes`));
      return;
    }
    if (pad + length + bytes.byteLength > buf!.byteLength) {
      // Only without (or with a wrong) Content-Length: grow geometrically.
      const grown = Buffer.allocUnsafe(Math.min(pad + maxBytes, Math.max(buf!.byteLength * 2, pad + length + bytes.byteLength)));
      buf!.copy(grown, 0, 0, pad + length);
      if (pooled) pool!.give(buf!);
      pooled = false;
      buf = grown;
    }
    buf!.set(bytes, pad + length);
    length += bytes.byteLength;
    if (!isLast) return;
    // Only a buffer taken from the pool goes back (a grown one is garbage-collected).
    const lent = pooled ? buf! : undefined;
    done(buf!.subarray(pad, pad + length), lent ? () => pool!.give(lent) : noop);
  };

  if (gate) {
    early = [];
    hold?.pause();
    gate.then(
      () => {
        if (failed) return;
        if (tooLarge()) {
          failed = true;
          return refuse();
        }
        const chunks = early!;
        early = undefined;
        if (!hold || hold.resume()) {
          open();
          if (chunks.length === 0 && earlyEnded) take(new Uint8Array(0), true);
          chunks.forEach((c, i) => take(c, earlyEnded && i === chunks.length - 1));
        }
      },
      (e: unknown) => {
        if (failed) return;
        failed = true;
        early = undefined;
        fail(e as SluiceError);
      },
    );
  } else {
    open();
  }
  res.onData((chunk, isLast) => {
    if (failed) return;
    if (early) {
      // Bounded by what uWS read along with the headers: the socket is paused.
      early.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) earlyEnded = true;
      return;
    }
    take(new Uint8Array(chunk), isLast);
  });
}

function noop(): void {}
