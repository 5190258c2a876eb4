/**
 * POST /v1/models/{m}:predict with {"instances": [...]}, the KServe v1 shape for plain JSON
 * users: each instance is one row (an array for a single-input model, or an object keyed by
 * input name). Answers {"model_name", "model_version", "predictions": [...]} where a
 * prediction is a number (one-value output) or an array, or an object for several outputs.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { SluiceError } from '../../../errors.js';
import type { TensorSpec } from '../../../model/manifest.js';
import type { Tensor } from '../../../model/tensor.js';
import { asObject, own, parseJsonBody } from '../../codec/safe-json.js';
import { decodeTensorData, encodeTensorData } from '../../codec/tensor-json.js';
import { readBody } from '../body.js';
import { param, type HttpContext } from '../context.js';
import { admitOrRefuse } from '../overload.js';
import { sendJson, type Exchange } from '../reply.js';
import type { InferResponse } from '../../../service/types.js';
import { acceptableInferType, bodyLimit, contentLength } from './infer.js';

function tensorFor(spec: TensorSpec, rows: unknown[], name: string): Tensor {
  const shape = [rows.length, ...spec.shape.slice(1)];
  if (shape.some((d) => d < 0)) throw new SluiceError('INVALID_ARGUMENT', `input ${name} has variable dimensions; use the v2 API`);
  return { name, datatype: spec.datatype, shape, data: decodeTensorData(rows, spec.datatype, shape, name) };
}

function rowsOf(t: Tensor): string[] {
  const rows = t.shape[0] ?? 1;
  const width = t.data.length / Math.max(rows, 1);
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    const row = encodeTensorData(t.data.subarray(r * width, (r + 1) * width) as Float32Array, t.datatype);
    out.push(width === 1 ? row.slice(1, -1) : row);
  }
  return out;
}

function answer(x: Exchange, rows: number, r: InferResponse): void {
  const columns = r.outputs.map(rowsOf);
  const predictions: string[] = [];
  for (let i = 0; i < rows; i++) {
    predictions.push(r.outputs.length === 1
      ? columns[0]![i]!
      : '{' + r.outputs.map((o, k) => JSON.stringify(o.name) + ':' + columns[k]![i]).join(',') + '}');
  }
  sendJson(x, 200, '{"model_name":' + JSON.stringify(r.model) + ',"model_version":' + JSON.stringify(r.version) + ',"predictions":[' + predictions.join(',') + ']}');
}

export function predictRoute(ctx: HttpContext) {
  return (res: HttpResponse, req: HttpRequest): void => {
    if (!admitOrRefuse(ctx, res, 'predict')) return;
    const spec = param(req, 0);
    const contentType = req.getHeader('content-type');
    const authorization = req.getHeader('authorization');
    const length = contentLength(req);
    const x = ctx.begin(res, 'predict', true);
    const at = spec.lastIndexOf(':');
    if (at < 0 || spec.slice(at + 1) !== 'predict') {
      return ctx.fail(x, new SluiceError('ROUTE_NOT_FOUND', 'use POST /v1/models/{model}:predict'), true);
    }
    const model = spec.slice(0, at);
    if (ctx.draining) return ctx.fail(x, new SluiceError('SHUTTING_DOWN', 'server is draining'), true);
    if (!acceptableInferType(contentType, false)) {
      return ctx.fail(x, new SluiceError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${contentType} is not accepted; use application/json`), true);
    }
    const gate = ctx.authorizeFirst(x, 'predict', authorization);
    if (gate === false) return;
    const limit = bodyLimit(ctx, x, model, undefined, length, gate);
    if (limit === false) return;
    // Synchronous from body to answer for an inline model, like the v2 infer route: uWS v20.30
    // closes a connection whose next pipelined request it parses while an answer is pending.
    readBody(res, length, limit, 0, (body) => ctx.guard(x, () => {
      // The model first, as Triton does: an unknown model is 404 whatever the body holds.
      const specs = ctx.engine.inputSpecs(model);
      const doc = asObject(parseJsonBody(body, ctx.opts.maxJsonDepth), 'request');
      const instances = own(doc, 'instances');
      if (!Array.isArray(instances) || instances.length === 0) throw new SluiceError('INVALID_ARGUMENT', 'instances must be a non-empty array');
      let inputs: Tensor[];
      if (specs.length === 1 && Array.isArray(instances[0])) {
        inputs = [tensorFor(specs[0]!, instances, specs[0]!.name)];
      } else {
        const objs = instances.map((r, i) => asObject(r, `instances[${i}]`));
        inputs = specs.map((s) => tensorFor(s, objs.map((o) => own(o, s.name)), s.name));
      }
      const r = ctx.engine.inferNow({ model, version: undefined, id: undefined, inputs, outputs: undefined, deadline: undefined, blockUs: ctx.opts.poolWaitUs, admitted: true });
      if (r instanceof Promise) return r.then((done) => answer(x, instances.length, done));
      answer(x, instances.length, r);
    }), (e) => ctx.fail(x, e, true), undefined, gate, gate && ctx.bodyHold(x));
  };
}
