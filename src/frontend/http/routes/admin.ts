/**
 * The admin API: list, show and register model versions (with upload),
 * promote, roll back, read, set and clear a model's traffic route, run experiments (create,
 * list, show, results, stop, promote, weights, covariates) and deployments (create, list, show,
 * pause, resume, abort, promote), read a model's drift and data quality, list alerts and manage their rules
 * and silences, read the audit log, and manage API keys. Every endpoint needs an API key with the admin scope (401 without one, 403
 * with another scope); the key's name is what the audit log records.
 *
 * Registering uploads the artifact in the body after a JSON header, like the binary tensor
 * extension: `Register-Header-Length: N`, then N bytes of JSON
 *   { manifest, version?, bump?, tags?, notes?, metrics?, hyperparameters?, training_config?,
 *     cv_scores?, parent_version?, reason? }
 * then the payload bytes.
 *
 * A route (`PUT /v1/admin/models/{m}/route`) is the route JSON plus optional `reason`, `owner`
 * and `force`, handed whole to the admin service, which checks it and loads the versions it names
 * before storing it. DELETE takes its reason and force from a JSON body or `?reason=` / `?force=`.
 *
 * Like every transport, this calls only the service (src/service/admin.ts), never the registry
 * or the routing code (DESIGN.md's layout rule; test/unit/layout.test.ts).
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { SluiceError } from '../../../errors.js';
import type { AdminService } from '../../../service/admin.js';
import { asObject, own, parseJsonBody } from '../../codec/safe-json.js';
import { readBody } from '../body.js';
import { param, type HttpContext } from '../context.js';
import { sendJson } from '../reply.js';
import { contentLength } from './infer.js';
import { checkName } from '../../../names.js';

type Handler = (res: HttpResponse, req: HttpRequest) => void;
/** uWebSockets.js method names (`del` is DELETE). */
export type Method = 'get' | 'post' | 'put' | 'del';

export interface AdminDeps {
  /** Every admin operation (on another I/O thread: forwarded to the main thread). */
  admin: AdminService;
  /** Largest artifact upload accepted. */
  maxUploadBytes: number;
}

interface Request {
  params: string[];
  query: URLSearchParams;
  body: Uint8Array;
  headerLength: string;
  actor: string;
}

/** An admin route: reads params, query and body, checks the admin key, answers JSON. */
function route(ctx: HttpContext, params: number, maxBody: number, act: (r: Request) => Promise<unknown>, paramNames = ['model name', 'version']): Handler {
  return (res, req) => {
    const values = Array.from({ length: params }, (_, i) => param(req, i));
    const query = new URLSearchParams(req.getQuery() ?? '');
    const authorization = req.getHeader('authorization');
    const headerLength = req.getHeader('register-header-length');
    const length = contentLength(req);
    const isGet = req.getMethod() === 'get';
    const x = ctx.begin(res, 'admin');
    // The key is checked before any of the body is read: an unauthenticated upload costs
    // only its headers (401, and the connection closes).
    const gate = ctx.authorizeFirst(x, 'admin', authorization);
    if (gate === false) return;
    const run = (body: Uint8Array) => ctx.guard(x, async () => {
      const actor = ((await gate) as string | undefined) ?? 'anonymous';
      // Path parameters are names (a model and a version, or an experiment): the one naming
      // rule, before anything else.
      values.forEach((v, i) => checkName(v, paramNames[i]!));
      sendJson(x, 200, JSON.stringify(await act({ params: values, query, body, headerLength, actor })));
    });
    if (isGet) return run(new Uint8Array(0));
    readBody(res, length, maxBody, 0, run, (e) => ctx.fail(x, e, true), undefined, gate, gate && ctx.bodyHold(x));
  };
}

function json(ctx: HttpContext, body: Uint8Array): Record<string, unknown> {
  return body.byteLength === 0 ? {} : asObject(parseJsonBody(body, ctx.opts.maxJsonDepth), 'request body');
}

const EXPERIMENT = ['experiment name'];
const DEPLOYMENT = ['deployment id'];

/** A body parsed as JSON of any shape (empty: undefined), for the service to judge. */
function anyJson(ctx: HttpContext, body: Uint8Array): unknown {
  return body.byteLength === 0 ? undefined : parseJsonBody(body, ctx.opts.maxJsonDepth);
}

function str(o: Record<string, unknown>, k: string, required = false): string | undefined {
  const v = own(o, k);
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw new SluiceError('INVALID_ARGUMENT', `${k} must be a non-empty string`);
  return v;
}

function bool(o: Record<string, unknown>, k: string): boolean | undefined {
  const v = own(o, k);
  if (v !== undefined && typeof v !== 'boolean') throw new SluiceError('INVALID_ARGUMENT', `${k} must be true or false`);
  return v;
}

/** `?k=true` or `?k=false` (absent: undefined). */
function queryFlag(q: URLSearchParams, k: string): boolean | undefined {
  const v = q.get(k);
  if (v === null) return undefined;
  if (v !== 'true' && v !== 'false') throw new SluiceError('INVALID_ARGUMENT', `?${k}= must be true or false`);
  return v === 'true';
}

function obj(o: Record<string, unknown>, k: string): Record<string, unknown> | undefined {
  const v = own(o, k);
  return v === undefined ? undefined : asObject(v, k);
}

export function adminRoutes(ctx: HttpContext, deps: AdminDeps): Array<[Method, string, Handler]> {
  const { admin } = deps;
  const small = 1 << 20;
  return [
    ['get', '/v1/admin/models', route(ctx, 0, 0, () => admin.listModels())],
    ['get', '/v1/admin/models/:model', route(ctx, 1, 0, (r) => admin.showModel(r.params[0]!))],
    ['get', '/v1/admin/models/:model/versions', route(ctx, 1, 0, (r) => admin.versions(r.params[0]!, r.query.get('stage') ?? undefined))],
    ['get', '/v1/admin/models/:model/versions/:version', route(ctx, 2, 0, (r) => admin.getVersion(r.params[0]!, r.params[1]!))],
    ['post', '/v1/admin/models/:model/versions', route(ctx, 1, deps.maxUploadBytes, (r) => {
      const n = Number(r.headerLength);
      if (r.headerLength === '' || !Number.isSafeInteger(n) || n < 2 || n > r.body.byteLength) {
        throw new SluiceError('INVALID_ARGUMENT', 'send Register-Header-Length: <bytes of JSON> and the JSON header, then the artifact');
      }
      const head = asObject(parseJsonBody(r.body.subarray(0, n), ctx.opts.maxJsonDepth), 'register header');
      const manifest = obj(head, 'manifest');
      if (!manifest) throw new SluiceError('INVALID_ARGUMENT', 'manifest is required');
      if (own(manifest, 'name') !== undefined && own(manifest, 'name') !== r.params[0]) {
        throw new SluiceError('INVALID_ARGUMENT', `manifest names model ${String(own(manifest, 'name'))}, not ${r.params[0]}`);
      }
      const bump = str(head, 'bump');
      const tags = own(head, 'tags');
      if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) throw new SluiceError('INVALID_ARGUMENT', 'tags must be a list of strings');
      const cv = own(head, 'cv_scores');
      if (cv !== undefined && (!Array.isArray(cv) || cv.some((t) => typeof t !== 'number' || !Number.isFinite(t)))) throw new SluiceError('INVALID_ARGUMENT', 'cv_scores must be a list of numbers');
      return admin.register({
        manifest: { ...manifest, name: r.params[0] },
        payload: r.body.subarray(n),
        version: str(head, 'version'),
        bump,
        tags: tags as string[] | undefined,
        notes: str(head, 'notes'),
        metrics: obj(head, 'metrics'),
        hyperparameters: obj(head, 'hyperparameters'),
        trainingConfig: obj(head, 'training_config'),
        cvScores: cv as number[] | undefined,
        parentVersion: str(head, 'parent_version'),
        reason: str(head, 'reason'),
        actor: r.actor,
      });
    })],
    ['post', '/v1/admin/models/:model/promote', route(ctx, 1, small, (r) => {
      const b = json(ctx, r.body);
      const stage = str(b, 'stage');
      return admin.promote(r.params[0]!, str(b, 'version', true)!, { stage, actor: r.actor, reason: str(b, 'reason') });
    })],
    ['post', '/v1/admin/models/:model/rollback', route(ctx, 1, small, (r) => {
      const b = json(ctx, r.body);
      return admin.rollback(r.params[0]!, { actor: r.actor, reason: str(b, 'reason'), to: str(b, 'to') });
    })],
    ['get', '/v1/admin/models/:model/route', route(ctx, 1, 0, (r) => admin.getRoute(r.params[0]!))],
    // The whole body goes to the service: a body that is no object is the route's error
    // (ROUTE_INVALID), like every other fault in it.
    ['put', '/v1/admin/models/:model/route', route(ctx, 1, small, (r) => {
      const raw = r.body.byteLength === 0 ? {} : parseJsonBody(r.body, ctx.opts.maxJsonDepth);
      return admin.setRoute(r.params[0]!, raw, r.actor);
    })],
    ['del', '/v1/admin/models/:model/route', route(ctx, 1, small, (r) => {
      const b = json(ctx, r.body);
      return admin.clearRoute(r.params[0]!, {
        actor: r.actor,
        reason: str(b, 'reason') ?? r.query.get('reason') ?? undefined,
        owner: own(b, 'owner'),
        force: bool(b, 'force') ?? queryFlag(r.query, 'force'),
      });
    })],
    // Off-policy evaluation: the body goes whole to the service (its faults are OPE_INVALID).
    ['post', '/v1/admin/models/:model/evaluate', route(ctx, 1, small, (r) => admin.evaluate(r.params[0]!, r.body.byteLength === 0 ? {} : parseJsonBody(r.body, ctx.opts.maxJsonDepth)))],
    // Shadow figures come from the engine (every I/O thread's, merged), not the registry.
    ['get', '/v1/admin/models/:model/shadow', route(ctx, 1, 0, (r) => ctx.engine.shadowReport(r.params[0]!))],
    // Drift and data quality per sampled version (this replica's samples).
    ['get', '/v1/admin/models/:model/drift', route(ctx, 1, 0, (r) => admin.modelDrift(r.params[0]!))],
    ['get', '/v1/admin/audit', route(ctx, 0, 0, (r) => {
      const limit = r.query.get('limit');
      const before = r.query.get('before');
      const n = limit === null ? 100 : Number(limit);
      const b = before === null ? undefined : Number(before);
      if (b !== undefined && !Number.isSafeInteger(b)) throw new SluiceError('INVALID_ARGUMENT', 'before must be an audit id');
      return admin.audit({ model: r.query.get('model') ?? undefined, limit: n, beforeId: b });
    })],
    // Experiments: bodies go whole to the service (their faults are EXPERIMENT_INVALID).
    ['post', '/v1/admin/experiments', route(ctx, 0, small, (r) => admin.createExperiment(anyJson(ctx, r.body), r.actor))],
    ['get', '/v1/admin/experiments', route(ctx, 0, 0, (r) => admin.listExperiments(r.query.get('status') ?? undefined))],
    ['get', '/v1/admin/experiments/:name', route(ctx, 1, 0, (r) => admin.showExperiment(r.params[0]!), EXPERIMENT)],
    ['get', '/v1/admin/experiments/:name/results', route(ctx, 1, 0, (r) => admin.experimentResults(r.params[0]!), EXPERIMENT)],
    ['post', '/v1/admin/experiments/:name/stop', route(ctx, 1, small, (r) => admin.stopExperiment(r.params[0]!, anyJson(ctx, r.body), r.actor), EXPERIMENT)],
    ['post', '/v1/admin/experiments/:name/promote', route(ctx, 1, small, (r) => admin.promoteExperiment(r.params[0]!, anyJson(ctx, r.body), r.actor), EXPERIMENT)],
    ['put', '/v1/admin/experiments/:name/weights', route(ctx, 1, small, (r) => admin.experimentWeights(r.params[0]!, anyJson(ctx, r.body), r.actor), EXPERIMENT)],
    ['post', '/v1/admin/experiments/:name/covariates', route(ctx, 1, 16 << 20, (r) => admin.experimentCovariates(r.params[0]!, anyJson(ctx, r.body)), EXPERIMENT)],
    // Deployments: bodies go whole to the service (their faults are DEPLOYMENT_INVALID).
    ['post', '/v1/admin/deployments', route(ctx, 0, small, (r) => admin.createDeployment(anyJson(ctx, r.body), r.actor))],
    ['get', '/v1/admin/deployments', route(ctx, 0, 0, (r) => admin.listDeployments(r.query.get('state') ?? undefined))],
    ['get', '/v1/admin/deployments/:id', route(ctx, 1, 0, (r) => admin.showDeployment(r.params[0]!), DEPLOYMENT)],
    ...(['pause', 'resume', 'abort', 'promote'] as const).map((op): [Method, string, Handler] => ['post', `/v1/admin/deployments/:id/${op}`, route(ctx, 1, small, (r) => {
      const body = anyJson(ctx, r.body);
      const id = r.params[0]!;
      return op === 'pause' ? admin.pauseDeployment(id, body, r.actor) : op === 'resume' ? admin.resumeDeployment(id, body, r.actor) : op === 'abort' ? admin.abortDeployment(id, body, r.actor) : admin.promoteDeployment(id, body, r.actor);
    }, DEPLOYMENT)]),
    // Alerts: bodies go whole to the service (their faults are ALERT_INVALID).
    ['get', '/v1/admin/alerts', route(ctx, 0, 0, (r) => admin.listAlerts(r.query.get('state') ?? undefined))],
    ['get', '/v1/admin/alerts/rules', route(ctx, 0, 0, () => admin.listAlertRules())],
    ['post', '/v1/admin/alerts/rules', route(ctx, 0, small, (r) => admin.createAlertRule(anyJson(ctx, r.body), r.actor))],
    ['get', '/v1/admin/alerts/silences', route(ctx, 0, 0, (r) => admin.listSilences(r.query.get('state') ?? undefined))],
    ['post', '/v1/admin/alerts/silences', route(ctx, 0, small, (r) => admin.createSilence(anyJson(ctx, r.body), r.actor))],
    ['del', '/v1/admin/alerts/silences/:id', route(ctx, 1, small, (r) => admin.deleteSilence(r.params[0]!, r.actor), ['silence id'])],
    // Retraining requests: the body goes whole to the service.
    ['post', '/v1/admin/models/:model/retrain', route(ctx, 1, small, (r) => admin.requestRetraining(r.params[0]!, anyJson(ctx, r.body), r.actor))],
    ['put', '/v1/admin/models/:model/retrain/schedule', route(ctx, 1, small, (r) => admin.setRetrainingSchedule(r.params[0]!, anyJson(ctx, r.body), r.actor))],
    ['del', '/v1/admin/models/:model/retrain/schedule', route(ctx, 1, small, (r) => admin.clearRetrainingSchedule(r.params[0]!))],
    ['get', '/v1/admin/retraining', route(ctx, 0, 0, (r) => {
      const model = r.query.get('model') ?? undefined;
      if (model !== undefined) checkName(model, 'model name');
      return admin.listRetraining(model);
    })],
    ['get', '/v1/admin/keys', route(ctx, 0, 0, () => admin.listKeys())],
    ['post', '/v1/admin/keys', route(ctx, 0, small, async (r) => {
      const b = json(ctx, r.body);
      const name = str(b, 'name', true)!;
      // The only response that ever contains a secret: the new key, once.
      return admin.createKey(name, own(b, 'scopes'), r.actor);
    })],
  ];
}
