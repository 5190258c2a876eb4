/**
 * GET /v2/stream (WebSocket): a stream of inference requests and answers in msgpack frames,
 * for batch jobs. Each binary frame is one request:
 *
 *   { id?, model, version?, inputs: [{ name, datatype, shape, data: <bin> }], outputs?: [name],
 *     timeout_ms? }
 *
 * and gets one frame back, in completion order, carrying the same `id`:
 *
 *   { id, model_name, model_version, outputs: [{ name, datatype, shape, data: <bin> }] }
 *   { id, error: "<message>", code: "<CODE>" }
 *
 * `data` is the tensor's raw little-endian bytes (msgpack bin). Answers are sent only while the
 * socket's buffered amount is below a high-water mark (the rest wait for `drain`); a client
 * with more than 2 x SLUICE_STREAM_MAX_IN_FLIGHT requests unanswered gets OVERLOADED for the
 * excess, and one that stops reading altogether is closed (1013), so a connection's memory
 * stays bounded.
 */
import { Packr } from 'msgpackr';
import type { TemplatedApp, WebSocket } from 'uWebSockets.js';
import { SluiceError, toSluiceError } from '../../errors.js';
import { arrayClassOf, elementCount, isDatatype, typedFromBytes, type Tensor } from '../../model/tensor.js';
import type { InferResponse } from '../../service/types.js';
import { checkFinite } from '../codec/finite.js';
import { own } from '../codec/safe-json.js';
import { unitIdOf } from '../codec/oip-infer.js';
import { parseFeedback, submitParsed } from '../../learn/feedback.js';
import type { HttpContext } from '../http/context.js';
import { finish } from '../http/reply.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** Stop sending (queue answers locally) above this many bytes buffered in the socket. */
const HIGH_WATER = 4 * 1024 * 1024;

interface Conn {
  inFlight: number;
  queue: Buffer[];
  closed: boolean;
  /** Whether the key given at the upgrade has the feedback scope (feedback frames need it). */
  feedback: boolean;
}

/** A frame's msgpack map; its `id` is read from it first, so that every error can carry it. */
export function unpackFrame(frame: Uint8Array): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = packr.unpack(frame);
  } catch {
    throw new SluiceError('MALFORMED_REQUEST', 'frame is not valid msgpack');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SluiceError('MALFORMED_REQUEST', 'frame must be a msgpack map');
  return doc as Record<string, unknown>;
}

/**
 * One request frame (see unpackFrame) -> engine request. Tensor bytes are copied once, into
 * aligned arrays. `checkTarget` resolves the model and version before the inputs are checked
 * (as in Triton).
 */
export function decodeFrame(o: Record<string, unknown>, now: number, checkTarget?: (model: string, version: string | undefined) => void): Parameters<HttpContext['engine']['infer']>[0] {
  const model = own(o, 'model');
  if (typeof model !== 'string' || model === '') throw new SluiceError('INVALID_ARGUMENT', 'model must be a string');
  const version = own(o, 'version');
  if (version !== undefined && typeof version !== 'string') throw new SluiceError('INVALID_ARGUMENT', 'version must be a string');
  checkTarget?.(model, version === '' ? undefined : version);
  const rawInputs = own(o, 'inputs');
  if (!Array.isArray(rawInputs) || rawInputs.length === 0) throw new SluiceError('INVALID_ARGUMENT', 'inputs must be a non-empty array');
  const inputs: Tensor[] = rawInputs.map((r: unknown, i) => {
    if (typeof r !== 'object' || r === null) throw new SluiceError('INVALID_ARGUMENT', `inputs[${i}] must be a map`);
    const t = r as Record<string, unknown>;
    const name = own(t, 'name');
    const datatype = own(t, 'datatype');
    const shape = own(t, 'shape');
    const data = own(t, 'data');
    if (typeof name !== 'string') throw new SluiceError('INVALID_ARGUMENT', `inputs[${i}].name must be a string`);
    if (!isDatatype(datatype) || !arrayClassOf(datatype)) throw new SluiceError('DATATYPE_MISMATCH', `input ${name} datatype ${String(datatype)} is not supported`);
    if (!Array.isArray(shape) || shape.length > 8 || shape.some((d) => !Number.isSafeInteger(d) || (d as number) < 0)) {
      throw new SluiceError('SHAPE_MISMATCH', `input ${name} shape must be up to 8 non-negative integers`);
    }
    if (!(data instanceof Uint8Array)) throw new SluiceError('INVALID_ARGUMENT', `input ${name} data must be msgpack bin (raw little-endian bytes)`);
    const Ctor = arrayClassOf(datatype)!;
    const count = elementCount(shape as number[]);
    if (data.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
      throw new SluiceError('SHAPE_MISMATCH', `input ${name} has shape [${shape}] of ${datatype} (${count * Ctor.BYTES_PER_ELEMENT} bytes) but ${data.byteLength} bytes of data`);
    }
    // Copied: uWS reuses the frame's memory once this callback returns.
    const tensor = typedFromBytes(Ctor, data, count, true);
    checkFinite(name, datatype, tensor);
    return { name, datatype, shape: shape as number[], data: tensor };
  });
  const outputs = own(o, 'outputs');
  if (outputs !== undefined && (!Array.isArray(outputs) || outputs.some((n) => typeof n !== 'string'))) throw new SluiceError('INVALID_ARGUMENT', 'outputs must be a list of names');
  const timeout = own(o, 'timeout_ms');
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0))) throw new SluiceError('INVALID_ARGUMENT', 'timeout_ms must be a non-negative number');
  const unit = own(o, 'unit_id');
  const unitId = unit === undefined ? undefined : unitIdOf(unit, 'unit_id');
  return { model, version: version as string | undefined, id: undefined, inputs, outputs: outputs as string[] | undefined, deadline: typeof timeout === 'number' && timeout > 0 ? now + timeout : undefined, unitId };
}

export function encodeAnswer(id: unknown, res: InferResponse): Buffer {
  const frame: Record<string, unknown> = {
    id: id ?? null,
    model_name: res.model,
    model_version: res.version,
    outputs: res.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) })),
  };
  // The routing decision, and which fallback answered instead of the requested version (absent
  // on answers that no route chose and no fallback gave).
  if (res.fallback !== undefined || res.decision !== undefined || res.state !== undefined) {
    const d = res.decision;
    frame.parameters = {
      ...(d ? { event_id: d.eventId, ...(d.variant !== '' ? { variant: d.variant } : {}), propensity: d.propensity } : {}),
      ...(d?.action !== undefined ? { action: d.action } : {}),
      ...(d?.eventIds !== undefined ? { event_ids: d.eventIds.join(',') } : {}),
      ...(res.state !== undefined ? { state: res.state } : {}),
      ...(res.fallback !== undefined ? { fallback: res.fallback, fallback_reason: res.fallbackReason ?? '' } : {}),
    };
  }
  return packr.pack(frame);
}

export function encodeError(id: unknown, e: unknown): Buffer {
  const err = toSluiceError(e);
  return packr.pack({ id: id ?? null, error: err.message, code: err.code });
}

export function attachStream(app: TemplatedApp, ctx: HttpContext, maxInFlight: number): void {
  const checkTarget = (model: string, version: string | undefined): void => ctx.engine.checkTarget(model, version);
  const send = (ws: WebSocket<Conn>, frame: Buffer) => {
    const c = ws.getUserData();
    if (c.closed) return;
    if (c.queue.length === 0 && ws.getBufferedAmount() <= HIGH_WATER) {
      ws.send(frame, true);
      return;
    }
    c.queue.push(frame);
    // A client that keeps sending but never reads: end it rather than buffer without bound.
    if (c.queue.length > 4 * maxInFlight) {
      c.closed = true;
      c.queue.length = 0;
      ws.end(1013, 'answers are not being read');
    }
  };
  /**
   * A feedback frame: `{"type": "feedback", "id"?, "event_id", "reward", "unit_id"?, "at"?}` or
   * `{"type": "feedback", "id"?, "events": [...]}`, answered `{"id", "results": [...]}` (one
   * outcome per event, as POST /v1/feedback's batch answer) once the events are durable.
   */
  const feedbackFrame = (ws: WebSocket<Conn>, c: Conn, id: unknown, doc: Record<string, unknown>): void => {
    if (!c.feedback) throw new SluiceError('PERMISSION_DENIED', 'feedback frames need a key with the feedback scope (given at the upgrade)');
    const { type: _type, id: _id, ...body } = doc;
    const parsed = parseFeedback(body, ctx.engine.config.feedbackMaxBatch);
    c.inFlight++;
    submitParsed(parsed, (items) => ctx.engine.feedback(items)).then((results) => {
      send(ws, packr.pack({ id: id ?? null, results }));
    }, (e: unknown) => send(ws, encodeError(id, e))).finally(() => {
      c.inFlight--;
    });
  };

  app.ws<Conn>('/v2/stream', {
    maxPayloadLength: ctx.opts.maxBodyBytes,
    // Past this much unsent data uWS would drop messages; answers are queued long before that.
    maxBackpressure: 64 * 1024 * 1024,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    upgrade: (res, req, context) => {
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const authorization = req.getHeader('authorization');
      // ctx.begin owns the abort handler (uWS keeps only one per response): a client that left
      // during authorization has already been counted (499) and must not be upgraded.
      const x = ctx.begin(res, 'stream');
      ctx.guard(x, async () => {
        if (ctx.draining) throw new SluiceError('SHUTTING_DOWN', 'server is draining');
        await ctx.opts.authorize('predict', authorization);
        // (async: a synchronous refusal becomes a rejection, not a failed upgrade)
        const feedback = await (async () => ctx.opts.authorize('feedback', authorization))().then(() => true, () => false);
        if (!finish(x, 101)) return;
        res.cork(() => res.upgrade<Conn>({ inFlight: 0, queue: [], closed: false, feedback }, key, protocol, extensions, context));
      }, undefined, false);
    },
    message: (ws, message, isBinary) => {
      const c = ws.getUserData();
      const now = performance.now();
      if (!isBinary) return send(ws, encodeError(null, new SluiceError('MALFORMED_REQUEST', 'send binary msgpack frames')));
      let id: unknown = null;
      try {
        const doc = unpackFrame(new Uint8Array(message));
        id = own(doc, 'id');
        if (own(doc, 'type') === 'feedback') return feedbackFrame(ws, c, id, doc);
        const request = decodeFrame(doc, now, checkTarget);
        if (c.inFlight + c.queue.length >= 2 * maxInFlight) {
          throw new SluiceError('OVERLOADED', `more than ${2 * maxInFlight} requests unanswered on this stream; wait for answers`);
        }
        if (ctx.draining) throw new SluiceError('SHUTTING_DOWN', 'server is draining');
        // Admission after the decode: the refusal must carry the frame's id to be usable.
        const admission = ctx.engine.admission;
        if (!admission.admit()) throw admission.overloaded;
        request.admitted = true;
        c.inFlight++;
        ctx.engine.infer(request).then(
          (res) => send(ws, encodeAnswer(id, res)),
          (e: unknown) => send(ws, encodeError(id, e)),
        ).finally(() => {
          c.inFlight--;
          admission.release();
        });
      } catch (e) {
        ctx.engine.metrics.countError(toSluiceError(e).code);
        send(ws, encodeError(id, e));
      }
    },
    drain: (ws) => {
      const c = ws.getUserData();
      while (c.queue.length > 0 && ws.getBufferedAmount() <= HIGH_WATER) ws.send(c.queue.shift()!, true);
    },
    close: (ws) => {
      const c = ws.getUserData();
      c.closed = true;
      c.queue.length = 0;
    },
  });
}
