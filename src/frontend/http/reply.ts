/**
 * Writing responses on uWebSockets.js: every write happens inside `cork` (one syscall per
 * response) and only if the client has not gone away (`onAborted` was called). Error bodies are
 * always `{"error": "<message>", "code": "<CODE>"}` with the catalogue's HTTP status.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { catalogue, SluiceError, toSluiceError } from '../../errors.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Entity', 500: 'Internal Server Error', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 507: 'Insufficient Storage',
};

export function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
}

/** Per-request state shared by the handler and the reply functions. */
export interface Exchange {
  res: HttpResponse;
  aborted: boolean;
  done: boolean;
  /**
   * The socket is paused (no reads) while this answer is pending: uWebSockets.js closes a
   * connection whose next pipelined request it parses before the current one is answered, so a
   * pending exchange keeps the next request in the kernel until it has been answered.
   */
  paused: boolean;
  /** The Retry-After value of a retryable 503 (SLUICE_ADMISSION_RETRY_AFTER_S). */
  retryAfter: string;
  /** Called once, when the response has been written (or the client left). */
  onFinish: (status: number, code?: string) => void;
  /**
   * Whether the answer closes the connection (`Connection: close`) whatever the route asked: the
   * server is draining (listener closed), so no further request on it would be taken.
   */
  closing: () => boolean;
}

/**
 * Marks the exchange finished (counted once, whoever gets there first: the reply or the
 * client leaving). True when the caller should write the response: not finished before and
 * the client is still there.
 */
export function finish(x: Exchange, status: number, code?: string): boolean {
  if (x.done) return false;
  x.done = true;
  x.onFinish(status, code);
  if (x.aborted) return false;
  // Resumed before the answer is written: uWS invalidates the response once it has ended. No
  // read can happen before the answer, which follows in this same turn.
  if (x.paused) {
    x.paused = false;
    x.res.resume();
  }
  return true;
}

export type Headers = ReadonlyArray<readonly [string, string]>;

export function sendJson(x: Exchange, status: number, body: string, headers: Headers = [], close = false): void {
  if (!finish(x, status)) return;
  x.res.cork(() => {
    // uWebSockets.js writes "200 OK" itself when no status was set: one call fewer per answer.
    if (status !== 200) x.res.writeStatus(statusLine(status));
    x.res.writeHeader('Content-Type', 'application/json');
    for (const [k, v] of headers) x.res.writeHeader(k, v);
    x.res.end(body, close || x.closing());
  });
}

/** Binary-extension response: JSON header, then tensors; the header length goes in a header. */
export function sendBinary(x: Exchange, json: string, binary: readonly Uint8Array[]): void {
  if (!finish(x, 200)) return;
  const headLength = Buffer.byteLength(json, 'utf8');
  let total = headLength;
  for (const b of binary) total += b.byteLength;
  const body = Buffer.allocUnsafe(total);
  body.write(json, 0, 'utf8');
  let at = headLength;
  for (const b of binary) {
    body.set(b, at);
    at += b.byteLength;
  }
  x.res.cork(() => {
    x.res.writeHeader('Content-Type', 'application/octet-stream')
      .writeHeader('Inference-Header-Content-Length', String(headLength))
      .end(body, x.closing());
  });
}

/** Refusals after which the connection is closed whatever the caller asked: nothing more is read from it. */
const CLOSING = new Set<string>(['UNAUTHENTICATED', 'PERMISSION_DENIED', 'BAD_FRAMING']);

export function sendError(x: Exchange, e: unknown, close = false): void {
  const err = toSluiceError(e);
  const entry = catalogue[err.code];
  if (CLOSING.has(err.code)) close = true;
  if (!finish(x, entry.http, err.code)) return;
  const body = JSON.stringify({ error: err.message, code: err.code });
  x.res.cork(() => {
    x.res.writeStatus(statusLine(entry.http)).writeHeader('Content-Type', 'application/json');
    // Retryable refusals tell the client when to come back.
    if (entry.retryable && entry.http === 503) x.res.writeHeader('Retry-After', x.retryAfter);
    x.res.end(body, close || x.closing());
  });
}

export { SluiceError };
