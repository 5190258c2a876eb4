/**
 * Open Inference Protocol (v2) REST endpoints other than infer: server and model metadata,
 * health, readiness, Triton's model configuration and statistics extensions, and the model
 * repository extension (index, load, unload).
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { SluiceError } from '../../../errors.js';
import { asObject, own, parseJsonBody } from '../../codec/safe-json.js';
import { tritonConfig, tritonStats } from '../../codec/triton-model.js';
import { readBody } from '../body.js';
import { param, type HttpContext } from '../context.js';
import { sendJson } from '../reply.js';
import { contentLength } from './infer.js';

export const SERVER_NAME = 'sluice';
export const EXTENSIONS = ['binary_tensor_data', 'model_repository', 'model_configuration', 'statistics'];

type Handler = (res: HttpResponse, req: HttpRequest) => void;

/** A GET endpoint answered from engine state; `version` is the optional second parameter. */
function get(ctx: HttpContext, route: string, withVersion: boolean, answer: (model: string, version: string | undefined) => unknown): Handler {
  return (res, req) => {
    const model = param(req, 0);
    const version = withVersion ? param(req, 1) : undefined;
    const x = ctx.begin(res, route);
    ctx.guard(x, () => sendJson(x, 200, JSON.stringify(answer(model, version))));
  };
}

export function serverMetadata(ctx: HttpContext, version: string): Handler {
  return (res) => {
    const x = ctx.begin(res, 'metadata');
    sendJson(x, 200, JSON.stringify({ name: SERVER_NAME, version, extensions: EXTENSIONS }));
  };
}

export function live(ctx: HttpContext): Handler {
  return (res) => {
    const x = ctx.begin(res, 'health');
    if (ctx.engine.live()) sendJson(x, 200, '{"live":true}');
    else ctx.fail(x, new SluiceError('SHUTTING_DOWN', 'server is stopping'));
  };
}

export function ready(ctx: HttpContext): Handler {
  return (res) => {
    const x = ctx.begin(res, 'health');
    if (ctx.unready || ctx.draining) return ctx.fail(x, new SluiceError('SHUTTING_DOWN', 'server is draining'));
    if (ctx.engine.ready()) sendJson(x, 200, '{"ready":true}');
    else ctx.fail(x, new SluiceError('MODEL_NOT_READY', 'not every start-up model is loaded yet'));
  };
}

export function modelMetadata(ctx: HttpContext, withVersion: boolean): Handler {
  return get(ctx, 'model', withVersion, (m, v) => ctx.engine.modelMetadata(m, v));
}

export function modelReady(ctx: HttpContext, withVersion: boolean): Handler {
  return (res, req) => {
    const model = param(req, 0);
    const version = withVersion ? param(req, 1) : undefined;
    const x = ctx.begin(res, 'model');
    ctx.guard(x, () => {
      // Unknown models and versions are 404 (engine errors); known but not ready is 503.
      const meta = ctx.engine.modelMetadata(model, version);
      if (!ctx.unready && !ctx.draining && ctx.engine.modelReady(model, version)) {
        sendJson(x, 200, JSON.stringify({ name: meta.name, version: version ?? meta.versions[0], ready: true }));
      } else {
        ctx.fail(x, new SluiceError('MODEL_NOT_READY', `model ${model} is not ready`));
      }
    });
  };
}

export function modelConfig(ctx: HttpContext, withVersion: boolean): Handler {
  return get(ctx, 'model', withVersion, (m, v) => tritonConfig(ctx.engine.modelConfig(m, v), ctx.engine.poolThreads));
}

export function modelStats(ctx: HttpContext, withVersion: boolean): Handler {
  return (res, req) => {
    const model = param(req, 0);
    const version = withVersion ? param(req, 1) : undefined;
    const x = ctx.begin(res, 'model');
    ctx.guard(x, async () => {
      const versions = ctx.engine.modelMetadata(model, version).versions.filter((v) => version === undefined || v === version);
      // Every I/O thread's figures, merged.
      const { metrics } = await ctx.engine.wholeMetrics();
      sendJson(x, 200, JSON.stringify({ model_stats: versions.map((ver) => tritonStats(metrics.of(model, ver))) }));
    });
  };
}

/** A POST endpoint with an optional small JSON body. */
function post(ctx: HttpContext, route: string, scope: 'admin', act: (model: string, body: Record<string, unknown>, who: string | undefined) => Promise<unknown>): Handler {
  return (res, req) => {
    const model = param(req, 0);
    const authorization = req.getHeader('authorization');
    const length = contentLength(req);
    const x = ctx.begin(res, route);
    const gate = ctx.authorizeFirst(x, scope, authorization);
    if (gate === false) return;
    readBody(res, length, Math.min(ctx.opts.maxBodyBytes, 1 << 20), 0, (bytes) => ctx.guard(x, async () => {
      const who = (await gate) as string | undefined;
      const body = bytes.byteLength === 0 ? {} : asObject(parseJsonBody(bytes, ctx.opts.maxJsonDepth), 'request body');
      sendJson(x, 200, JSON.stringify(await act(model, body, who)));
    }), (e) => ctx.fail(x, e, true), undefined, gate, gate && ctx.bodyHold(x));
  };
}

export function repositoryIndex(ctx: HttpContext): Handler {
  return (res, req) => {
    const method = req.getMethod();
    const length = contentLength(req);
    const x = ctx.begin(res, 'repository');
    const answer = async (onlyReady: boolean) => {
      const all = await ctx.engine.repositoryIndex();
      sendJson(x, 200, JSON.stringify(onlyReady ? all.filter((m) => m.state === 'READY') : all));
    };
    if (method === 'get') return ctx.guard(x, () => answer(false));
    readBody(res, length, 1 << 16, 0, (bytes) => ctx.guard(x, async () => {
      const body = bytes.byteLength === 0 ? {} : asObject(parseJsonBody(bytes, ctx.opts.maxJsonDepth), 'request body');
      const r = own(body, 'ready');
      if (r !== undefined && typeof r !== 'boolean') throw new SluiceError('INVALID_ARGUMENT', 'ready must be a boolean');
      await answer(r === true);
    }), (e) => ctx.fail(x, e, true));
  };
}

function versionParam(body: Record<string, unknown>): string | undefined {
  const p = own(body, 'parameters');
  if (p === undefined) return undefined;
  const v = own(asObject(p, 'parameters'), 'version');
  if (v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') throw new SluiceError('INVALID_ARGUMENT', 'parameters.version must be a string');
  return String(v);
}

/** `parameters.default` of a load: false loads a live version beside the default one. */
function defaultParam(body: Record<string, unknown>): boolean | undefined {
  const p = own(body, 'parameters');
  if (p === undefined) return undefined;
  const d = own(asObject(p, 'parameters'), 'default');
  if (d !== undefined && typeof d !== 'boolean') throw new SluiceError('INVALID_ARGUMENT', 'parameters.default must be a boolean');
  return d;
}

export function load(ctx: HttpContext): Handler {
  return post(ctx, 'repository', 'admin', async (model, body) => {
    const asDefault = defaultParam(body);
    const version = await ctx.engine.load(model, { version: versionParam(body), asDefault });
    return { model_name: model, model_version: version, ...(asDefault === false ? { default: false } : {}) };
  });
}

export function unload(ctx: HttpContext): Handler {
  return post(ctx, 'repository', 'admin', async (model, body) => {
    const version = versionParam(body);
    await ctx.engine.unload(model, { version });
    return { model_name: model, ...(version === undefined ? {} : { model_version: version }), unloaded: true };
  });
}
