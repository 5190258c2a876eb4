/**
 * The HTTP refusal under overload: 503 with code OVERLOADED and Retry-After, written at once from
 * the request handler, before the body is read (uWebSockets.js skips the unread body and keeps
 * the connection for the next request). It is the cheapest answer the server can give: no
 * abort handler (nothing is asynchronous), no body parse, a constant body.
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
  const r = refusal(ctx, route);
  ctx.counters.set(r.key, (ctx.counters.get(r.key) ?? 0) + 1);
  ctx.engine.metrics.countError('OVERLOADED');
  // Written inside the request handler, where uWebSockets.js has already corked the socket.
  res.writeStatus(STATUS).writeHeader('Content-Type', 'application/json').writeHeader('Retry-After', r.retryAfter).end(r.body);
  return false;
}

interface Refusal { key: string; body: string; retryAfter: string }

/** Built once per server and route: nothing of a refusal is computed per request. */
const refusals = new WeakMap<HttpContext, Map<string, Refusal>>();

function refusal(ctx: HttpContext, route: string): Refusal {
  let byRoute = refusals.get(ctx);
  if (!byRoute) refusals.set(ctx, (byRoute = new Map()));
  let r = byRoute.get(route);
  if (!r) {
    const e = ctx.engine.admission.overloaded;
    r = { key: `${route} 503`, body: JSON.stringify({ error: e.message, code: e.code }), retryAfter: ctx.retryAfter };
    byRoute.set(route, r);
  }
  return r;
}
