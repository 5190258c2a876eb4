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
import { sendJson } from '../reply.js';
import { acceptableInferType, contentLength } from './infer.js';

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
    readBody(res, length, ctx.opts.maxBodyBytes, 0, (body) => ctx.guard(x, async () => {
      const who = ctx.opts.authorize('predict', authorization);
      if (who instanceof Promise) await who;
      const doc = asObject(parseJsonBody(body, ctx.opts.maxJsonDepth), 'request');
      const instances = own(doc, 'instances');
      if (!Array.isArray(instances) || instances.length === 0) throw new SluiceError('INVALID_ARGUMENT', 'instances must be a non-empty array');
      const specs = ctx.engine.inputSpecs(model);
      let inputs: Tensor[];
      if (specs.length === 1 && Array.isArray(instances[0])) {
        inputs = [tensorFor(specs[0]!, instances, specs[0]!.name)];
      } else {
        const objs = instances.map((r, i) => asObject(r, `instances[${i}]`));
        inputs = specs.map((s) => tensorFor(s, objs.map((o) => own(o, s.name)), s.name));
      }
      const r = await ctx.engine.infer({ model, version: undefined, id: undefined, inputs, outputs: undefined, deadline: undefined });
      const columns = r.outputs.map(rowsOf);
      const predictions = instances.map((_, i) =>
        r.outputs.length === 1
          ? columns[0]![i]!
          : '{' + r.outputs.map((o, k) => JSON.stringify(o.name) + ':' + columns[k]![i]).join(',') + '}');
      sendJson(x, 200, '{"model_name":' + JSON.stringify(r.model) + ',"model_version":' + JSON.stringify(r.version) + ',"predictions":[' + predictions.join(',') + ']}');
    }), (e) => ctx.fail(x, e, true));
  };
}
