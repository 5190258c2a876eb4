/**
 * POST /v1/feedback: the outcome of an earlier decision, `{"event_id", "reward", "unit_id"?,
 * "at"?}`, or a batch `{"events": [...]}` (src/learn/feedback.ts). Needs the `feedback` scope,
 * checked before any of the body is read; the body is bounded by the batch limit.
 *
 * A single event answers 200 `{"event_id", "status": "accepted" | "duplicate"}`, or its error
 * with the code's status (EVENT_NOT_FOUND 404, FEEDBACK_TOO_LATE 422, FEEDBACK_INVALID 400,
 * FEEDBACK_STORAGE_FULL 503...). A batch answers 200 `{"results": [...]}`, one outcome per
 * event in order, each `{"event_id", "status"}` or `{"event_id", "error": {"code", "message"}}`;
 * a whole-body problem (malformed JSON, over the limit) refuses the whole batch.
 * Every answer comes once the events it acknowledges are durable.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { isErrorCode, SluiceError } from '../../../errors.js';
import { MAX_EVENT_ID_LENGTH } from '../../../learn/event-id.js';
import { parseFeedback, submitParsed } from '../../../learn/feedback.js';
import { parseJsonBody } from '../../codec/safe-json.js';
import { readBody } from '../body.js';
import type { HttpContext } from '../context.js';
import { sendJson } from '../reply.js';
import { acceptableInferType, contentLength } from './infer.js';

/** Bytes one event can need: two ids at their longest, escaped, the numbers and the keys. */
const BYTES_PER_EVENT = 2 * MAX_EVENT_ID_LENGTH * 6 + 256;
const SLACK = 4096;

export function feedbackRoute(ctx: HttpContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const contentType = req.getHeader('content-type');
    const authorization = req.getHeader('authorization');
    const length = contentLength(req);
    const x = ctx.begin(res, 'feedback');
    if (ctx.draining) return ctx.fail(x, new SluiceError('SHUTTING_DOWN', 'server is draining'), true);
    if (!acceptableInferType(contentType, false)) {
      return ctx.fail(x, new SluiceError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${contentType} is not accepted; use application/json`), true);
    }
    const gate = ctx.authorizeFirst(x, 'feedback', authorization);
    if (gate === false) return;
    const maxBatch = ctx.engine.config.feedbackMaxBatch;
    const limit = Math.min(ctx.opts.maxBodyBytes, maxBatch * BYTES_PER_EVENT + SLACK);
    readBody(res, length, limit, 0, (body) => ctx.guard(x, async () => {
      const doc = parseJsonBody(body, ctx.opts.maxJsonDepth);
      const parsed = parseFeedback(doc, maxBatch);
      const results = await submitParsed(parsed, (items) => ctx.engine.feedback(items));
      const batch = Object.hasOwn(doc as object, 'events');
      if (batch) return sendJson(x, 200, JSON.stringify({ results }));
      const one = results[0]!;
      if ('status' in one) return sendJson(x, 200, JSON.stringify(one));
      throw new SluiceError(isErrorCode(one.error.code) ? one.error.code : 'INTERNAL', one.error.message);
    }), (e) => ctx.fail(x, e, true), undefined, gate, gate && ctx.bodyHold(x));
  };
}
