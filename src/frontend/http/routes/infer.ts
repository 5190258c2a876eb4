/**
 * POST /v2/models/{m}[/versions/{v}]/infer: the Open Inference Protocol inference endpoint,
 * JSON or binary tensor extension, on the request hot path.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { SluiceError } from '../../../errors.js';
import { decodeInfer, encodeInfer, unitIdOf, type DecodedInfer } from '../../codec/oip-infer.js';
import { readBody } from '../body.js';
import { bodyBound } from '../body-bound.js';
import { param, type HttpContext } from '../context.js';
import { admitOrRefuse } from '../overload.js';
import { sendBinary, sendJson, type Exchange } from '../reply.js';
import { earliest, type InferResponse } from '../../../service/types.js';

/** Content types an infer body may declare (none at all is fine: tritonclient sends none). */
export function acceptableInferType(contentType: string, binary: boolean): boolean {
  // The two exact forms almost every client sends, without allocating.
  if (contentType === '' || contentType === 'application/json') return true;
  const mime = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return mime === 'application/json' || (binary && mime === 'application/octet-stream');
}

export function contentLength(req: HttpRequest): number | undefined {
  const v = req.getHeader('content-length');
  if (v === '') return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * The body limit for a request to `model`: a body larger than the model could need is refused
 * (413, false returned) before it is read or parsed; behind a pending key check, by readBody
 * once the key is accepted, so an unauthorized client learns nothing of the model.
 */
export function bodyLimit(ctx: HttpContext, x: Exchange, model: string, version: string | undefined, length: number | undefined, gate: Promise<unknown> | undefined): number | false {
  const bound = bodyBound(ctx.engine, model, version);
  if (bound === undefined) return ctx.opts.maxBodyBytes;
  if (!gate && length !== undefined && length > bound) {
    ctx.fail(x, new SluiceError('PAYLOAD_TOO_LARGE', `body of ${length} bytes is more than a request to ${model} can need (${bound} bytes at its max_batch_size)`), true);
    return false;
  }
  return Math.min(bound, ctx.opts.maxBodyBytes);
}

export function inferRoute(ctx: HttpContext, withVersion: boolean) {
  return (res: HttpResponse, req: HttpRequest): void => {
    // Admission first: a refusal reads no header and no body.
    if (!admitOrRefuse(ctx, res, 'infer')) return;
    const arrival = performance.now();
    const model = param(req, 0);
    const version = withVersion ? param(req, 1) : undefined;
    const contentType = req.getHeader('content-type');
    const headerLength = req.getHeader('inference-header-content-length');
    const timeoutMs = req.getHeader('timeout-ms');
    const authorization = req.getHeader('authorization');
    const unitHeader = req.getHeader('sluice-unit-id');
    const length = contentLength(req);
    const x = ctx.begin(res, 'infer', true);
    if (ctx.draining) return ctx.fail(x, new SluiceError('SHUTTING_DOWN', 'server is draining'), true);
    const binary = headerLength !== '';
    if (!acceptableInferType(contentType, binary)) {
      return ctx.fail(x, new SluiceError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${contentType} is not accepted; use application/json`), true);
    }
    const jsonLength = binary ? Number(headerLength) : undefined;
    // Pad the buffer so the binary section after the JSON header starts 8-byte aligned: binary
    // tensors can then be used in place, without a copy.
    const pad = jsonLength !== undefined && Number.isSafeInteger(jsonLength) ? (8 - (jsonLength % 8)) % 8 : 0;
    // Authorized before any of the body is read: a refused request costs only its headers.
    const gate = ctx.authorizeFirst(x, 'predict', authorization);
    if (gate === false) return;
    const limit = bodyLimit(ctx, x, model, version, length, gate);
    if (limit === false) return;
    // The body may be read into a pooled buffer (binary tensors are used in place): it goes
    // back once the answer or error has been sent.
    readBody(res, length, limit, pad, (body, release) => ctx.guard(x, () => answer(ctx, x, body, jsonLength, arrival, model, version, timeoutMs, unitHeader), release),
      (e) => ctx.fail(x, e, true), ctx.bodies, gate, gate && ctx.bodyHold(x));
  };
}

/**
 * Decodes, runs and answers one request. Synchronous from body to reply when the model answers
 * at once (inline models): no promise or microtask on that path; a promise otherwise.
 */
function answer(ctx: HttpContext, x: Exchange, body: Uint8Array, jsonLength: number | undefined, arrival: number, model: string, version: string | undefined, timeoutMs: string, unitHeader: string): void | Promise<void> {
  // The model and version first, as Triton does: an unknown model is 404 whatever the body holds.
  ctx.engine.checkTarget(model, version);
  const decoded = decodeInfer(body, jsonLength, ctx.opts.maxJsonDepth, arrival, model, version);
  const request = decoded.request;
  if (timeoutMs !== '') {
    const ms = Number(timeoutMs);
    if (!Number.isFinite(ms) || ms < 0) throw new SluiceError('INVALID_ARGUMENT', 'Timeout-Ms must be a non-negative number of milliseconds');
    request.deadline = earliest(request.deadline, arrival + ms);
  }
  // The body's parameters.unit_id wins over the header (it is the more specific of the two).
  if (unitHeader !== '' && request.unitId === undefined) request.unitId = unitIdOf(unitHeader, 'Sluice-Unit-Id');
  // uWS v20.30 closes a connection whose next pipelined request it parses while this answer is
  // pending: a pooled answer is waited for (briefly) so that it is sent before we return.
  request.blockUs = ctx.opts.poolWaitUs;
  request.admitted = true;
  const result = ctx.engine.inferNow(request);
  if (result instanceof Promise) return result.then((r) => reply(x, r, decoded.binaryOutputs));
  reply(x, result, decoded.binaryOutputs);
}

function reply(x: Exchange, result: InferResponse, binaryOutputs: DecodedInfer['binaryOutputs']): void {
  const encoded = encodeInfer(result, binaryOutputs);
  if (encoded.binary.length > 0) sendBinary(x, encoded.json, encoded.binary);
  else sendJson(x, 200, encoded.json);
}
