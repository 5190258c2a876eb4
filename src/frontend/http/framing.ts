/**
 * Request framing checks that uWebSockets.js v20.30 does not make (RFC 9112 section 6.3). uWS
 * takes the FIRST Content-Length when several are sent and reads any Transfer-Encoding as
 * chunked, so a request framed one way by a proxy in front could be framed another way here
 * (request smuggling). What uWS itself refuses never reaches a handler: it closes the connection
 * without an answer when both Content-Length and Transfer-Encoding are sent, when the
 * Content-Length it uses is not 1 to 9 digits, or when Host is missing.
 */
import type { HttpRequest } from 'uWebSockets.js';
import { SluiceError } from '../../errors.js';

const DIGITS = /^[0-9]{1,15}$/;

/** The framing error of a request, or undefined when its length is unambiguous. */
export function framingError(req: HttpRequest): SluiceError | undefined {
  let lengths = 0;
  let encodings = 0;
  let problem: string | undefined;
  // forEach is the only way to see repeated headers (getHeader returns the first).
  req.forEach((key, value) => {
    if (key === 'content-length') {
      // Repeats are refused even with equal values (RFC 9112 6.3 allows either).
      if (++lengths > 1) problem ??= 'Content-Length is sent more than once';
      else if (!DIGITS.test(value)) problem ??= `Content-Length ${JSON.stringify(value.slice(0, 40))} is not a number of bytes`;
    } else if (key === 'transfer-encoding') {
      if (++encodings > 1) problem ??= 'Transfer-Encoding is sent more than once';
      else if (value.toLowerCase() !== 'chunked') problem ??= `Transfer-Encoding ${JSON.stringify(value.slice(0, 40))} is not supported; only chunked is`;
    }
  });
  if (!problem && lengths > 0 && encodings > 0) problem = 'Content-Length and Transfer-Encoding are both sent';
  return problem ? new SluiceError('BAD_FRAMING', problem) : undefined;
}
