/**
 * The admin service: what the admin API calls (DESIGN.md: transports call only the service;
 * the service wraps the registry). Model versions, stages and the audit log from the registry;
 * API keys; a model's route through src/routing/control.ts, which loads every version a route
 * names before the route is stored, after which it is put in force here at once (the registry
 * watcher brings it to the other replicas, and would bring it here too a moment later);
 * experiments (src/service/experiments.ts), which own their model's route while they run;
 * alerts, their rules and silences (src/service/alerts.ts); a model's drift figures, from the
 * engine's drift monitor (src/analyze/drift-monitor.ts).
 *
 * Its arguments are the API's values, checked here and below (names, stages, routes, owners),
 * so that every transport gets the same answers; its results are plain data the transports
 * serialise as they are. The main thread holds the one real instance; another I/O thread holds
 * `forwardedAdmin`, whose calls run on the main thread (src/io).
 */
import { SluiceError } from '../errors.js';
import type { ApiKeys, CreatedKey, KeyRecord } from '../auth/keys.js';
import type { Scope } from '../auth/scopes.js';
import type { Registry } from '../registry/registry.js';
import type { Bump } from '../registry/semver.js';
import type { AuditEntry, ModelDetail, ModelSummary, ModelVersion, Stage, StageChange } from '../registry/types.js';
import { registryRouteControl, type RouteControl } from '../routing/control.js';
import { parseRoute, parseRouteOwner, type RouteSpec } from '../routing/route.js';
import type { PublishedRoute } from '../routing/plane-route.js';
import type { PolicySource } from './evaluate.js';
import { ALERT_OPERATIONS, alertsService, type AlertsService } from './alerts.js';
import { DEPLOYMENT_OPERATIONS, deploymentsService, type DeploymentsService } from './deployments.js';
import { windowReader, type WindowSource } from '../control/deployments/windows.js';
import type { ModelDriftReport } from '../analyze/drift-monitor.js';
import { EXPERIMENT_OPERATIONS, experimentsService, type ExperimentsService } from './experiments.js';
import { RETRAINING_OPERATIONS, retrainingService, type RetrainingService } from './retraining.js';
import type { Retraining } from '../control/retraining/retraining.js';

/** A registration as the API gives it: the header's fields and the artifact's bytes. */
export interface RegisterRequest {
  /** The manifest in model.json form, its `name` the model's. */
  manifest: Record<string, unknown>;
  payload: Uint8Array;
  version?: string;
  bump?: string;
  tags?: string[];
  notes?: string;
  metrics?: Record<string, unknown>;
  hyperparameters?: Record<string, unknown>;
  trainingConfig?: Record<string, unknown>;
  cvScores?: number[];
  parentVersion?: string;
  reason?: string;
  actor: string;
}

/** Who asks to clear a route, why, on whose behalf (`owner`, default manual) and whether to `force`. */
export interface RouteRequest {
  actor: string;
  reason?: string;
  /** "manual" | "experiment" | "deployment"; anything else is ROUTE_INVALID. */
  owner?: unknown;
  /** Replace or clear another controller's route (else ROUTE_OWNED, 409). */
  force?: boolean;
}

export interface AdminService extends ExperimentsService, DeploymentsService, AlertsService, RetrainingService {
  listModels(): Promise<ModelSummary[]>;
  showModel(model: string): Promise<ModelDetail>;
  /** A model's versions in registration order, optionally of one stage. */
  versions(model: string, stage?: string): Promise<ModelVersion[]>;
  getVersion(model: string, version: string): Promise<ModelVersion>;
  register(req: RegisterRequest): Promise<ModelVersion>;
  /** To `opts.stage`, production by default. */
  promote(model: string, version: string, opts: { stage?: string; actor: string; reason?: string }): Promise<StageChange>;
  rollback(model: string, opts: { actor: string; reason?: string; to?: string }): Promise<StageChange>;
  audit(query: { model?: string; limit?: number; beforeId?: number }): Promise<AuditEntry[]>;
  /** {model, route, owner, generation, updated_by, updated_at}, or {model, route: null} without a route. */
  getRoute(model: string): Promise<object>;
  /**
   * `body` is the API's: the route JSON plus `reason?`, `owner?` and `force?`, checked here in
   * that order (the route's faults are ROUTE_INVALID naming the field; a body that is not an
   * object is the route's fault too).
   */
  setRoute(model: string, body: unknown, actor: string): Promise<object>;
  clearRoute(model: string, req: RouteRequest): Promise<object>;
  listKeys(): Promise<KeyRecord[]>;
  /** The only answer that ever holds a secret: the new key's, once. */
  createKey(name: string, scopes: unknown, actor: string): Promise<CreatedKey>;
  /** Off-policy evaluation of a candidate policy on a bandit's logged decisions (src/service/evaluate.ts). */
  evaluate(model: string, body: unknown): Promise<object>;
  /** Drift and data quality of the model's sampled versions on this replica (src/analyze/drift-monitor.ts). */
  modelDrift(model: string): Promise<ModelDriftReport>;
}

/** Every operation, for forwarding from another thread; the check below fails to compile when one is missing. */
export const ADMIN_OPERATIONS = [
  'listModels', 'showModel', 'versions', 'getVersion', 'register', 'promote', 'rollback', 'audit',
  'getRoute', 'setRoute', 'clearRoute', 'listKeys', 'createKey', 'evaluate', 'modelDrift', ...EXPERIMENT_OPERATIONS, ...DEPLOYMENT_OPERATIONS, ...ALERT_OPERATIONS, ...RETRAINING_OPERATIONS,
] as const satisfies ReadonlyArray<keyof AdminService>;
const everyOperationListed: Exclude<keyof AdminService, (typeof ADMIN_OPERATIONS)[number]> extends never ? true : never = true;
void everyOperationListed;

/** The engine's drift figures (src/service/engine.ts driftReport). */
export interface DriftSource {
  driftReport(model: string): Promise<ModelDriftReport>;
}

/** What of the engine the admin service uses: loading a route's versions and putting routes in force. */
export interface RouteEngine {
  prepareVersions(model: string, versions: string[]): Promise<void>;
  /** `registryGen`: the route's generation in the registry (what its decisions record). */
  setRoute(model: string, spec: RouteSpec | undefined, registryGen?: number): Promise<number>;
  hasModel(model: string): boolean;
  liveVersions(model: string): { route?: PublishedRoute };
}

export interface AdminDepsOf {
  registry: Registry;
  keys: ApiKeys;
  /**
   * windowSnapshot: a version's recent traffic (blue-green deployments' baseline); driftReport:
   * the drift monitor's figures; absent in tests that need neither.
   */
  engine: RouteEngine & PolicySource & Partial<WindowSource> & Partial<DriftSource>;
  /** Retraining requests (absent: the retraining operations answer INTERNAL). */
  retraining?: Retraining;
}

function text(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new SluiceError('INVALID_ARGUMENT', `${what} must be a non-empty string`);
  return v;
}

function flag(v: unknown, what: string): boolean | undefined {
  if (v !== undefined && typeof v !== 'boolean') throw new SluiceError('INVALID_ARGUMENT', `${what} must be true or false`);
  return v;
}

/** Routes stored in the registry and put in force on this replica's engine. */
function engineRouteControl(registry: Registry, engine: RouteEngine): RouteControl {
  const stored = registryRouteControl(registry, (model, versions) => engine.prepareVersions(model, versions));
  return {
    get: (model) => stored.get(model),
    async set(model, spec, opts) {
      const out = await stored.set(model, spec, opts);
      await engine.setRoute(model, spec, (out as { generation: number }).generation);
      return out;
    },
    async clear(model, opts) {
      const out = await stored.clear(model, opts);
      // A model this replica does not serve has no route here to clear.
      if (engine.hasModel(model) && engine.liveVersions(model).route) await engine.setRoute(model, undefined);
      return out;
    },
  };
}

/** The admin service of this process (main thread). */
export function adminService({ registry, keys, engine, retraining }: AdminDepsOf): AdminService {
  const routes = engineRouteControl(registry, engine);
  const change = (req: RouteRequest) => ({ actor: req.actor, reason: req.reason, owner: parseRouteOwner(req.owner), force: flag(req.force, 'force') });
  return {
    listModels: () => registry.listModels(),
    showModel: (model) => registry.showModel(model),
    // Stages and bumps are checked by the registry (INVALID_ARGUMENT), not narrowed here.
    versions: (model, stage) => registry.versions(model, { stage: stage as Stage | undefined }),
    getVersion: (model, version) => registry.getVersion(model, version),
    register: ({ bump, ...req }) => registry.register({ ...req, bump: bump as Bump | undefined }),
    promote: (model, version, o) => registry.promote(model, version, (o.stage ?? 'production') as Stage, { actor: o.actor, reason: o.reason }),
    rollback: (model, o) => registry.rollback(model, o),
    audit: (query) => registry.audit(query),
    getRoute: async (model) => (await routes.get(model)) ?? { model, route: null },
    setRoute(model, body, actor) {
      const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
      const { reason, owner, force, ...route } = isObject ? (body as Record<string, unknown>) : {};
      const spec = parseRoute(isObject ? route : body, model);
      return routes.set(model, spec, change({ actor, reason: text(reason, 'reason'), owner, force: force as boolean | undefined }));
    },
    clearRoute: (model, req) => routes.clear(model, change(req)),
    listKeys: () => keys.list(),
    createKey: (name, scopes, actor) => keys.create(name, scopes as Scope[], actor),
    // Loaded on first use: the statistics library it brings costs ~10 MB of memory that a
    // server which never evaluates need not hold (test/integration/footprint.test.ts).
    evaluate: async (model, body) => (await import('./evaluate.js')).evaluateRequest(registry.db, engine, model, body),
    modelDrift: async (model) => {
      if (!engine.driftReport) throw new SluiceError('INTERNAL', 'this server has no drift monitor');
      return engine.driftReport(model);
    },
    ...experimentsService(registry.db, engine),
    ...deploymentsService(registry.db, engine, engine.windowSnapshot ? windowReader(engine as WindowSource) : undefined),
    ...alertsService(registry.db),
    ...retrainingService(registry.db, retraining),
  };
}

/**
 * An admin service whose every operation runs elsewhere (the main thread, for another I/O
 * thread): `call(operation, args)` carries it and answers with its result or coded error.
 */
export function forwardedAdmin(call: (operation: string, args: unknown[]) => Promise<unknown>): AdminService {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const op of ADMIN_OPERATIONS) out[op] = (...args) => call(op, args);
  return out as unknown as AdminService;
}
