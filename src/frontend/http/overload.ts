/**
 * The HTTP refusal under overload: 503 with code OVERLOADED and Retry-After, written at once from
 * the request handler, before the body is read (uWebSockets.js skips the unread body and keeps
 * the connection for the next request). It is the cheapest answer the server can give: no
 * abort handler (nothing is asynchronous), no body parse, a constant body, one corked write.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { HttpContext } from './context.js';
import { statusLine } from './reply.js';

const STATUS = statusLine(503);

/**
 * Asks admission control about a request at its entry. True: admitted (pass `true` to
 * `ctx.begin`, which releases it when the exchange finishes). False: it has been refused.
 */
export function admitOrRefuse(ctx: HttpContext, res: HttpResponse, route: string): boolean {
  const admission = ctx.engine.admission;
  if (admission.admit()) return true;
  const key = `${route} 503`;
  ctx.counters.set(key, (ctx.counters.get(key) ?? 0) + 1);
  ctx.engine.metrics.countError('OVERLOADED');
  const body = refusalBody(ctx);
  const retryAfter = String(admission.o.retryAfterS);
  res.cork(() => {
    res.writeStatus(STATUS).writeHeader('Content-Type', 'application/json').writeHeader('Retry-After', retryAfter).end(body);
  });
  return false;
}

let cached: { ctx: HttpContext; body: string } | undefined;

function refusalBody(ctx: HttpContext): string {
  if (cached?.ctx !== ctx) {
    const e = ctx.engine.admission.overloaded;
    cached = { ctx, body: JSON.stringify({ error: e.message, code: e.code }) };
  }
  return cached.body;
}
