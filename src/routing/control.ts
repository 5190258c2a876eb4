/**
 * Reading and changing a model's route for the admin service (src/service/admin.ts). A route is
 * stored only after every version it names serves here: `prepare` loads them (verify, warm,
 * validate) first, and a version that fails to load fails the call with that version's error,
 * leaving the route in force untouched (issue #12). Other replicas hear of the stored route
 * through the registry watcher and load what they lack themselves.
 *
 * The answers are the API's JSON: {model, route: <route JSON> | null, owner, generation,
 * updated_by, updated_at} (route null, and nothing else: the model serves its production
 * version), and for set and clear {model, route, owner, generation, changed, audit_id,
 * forced_over}.
 */
import type { Registry } from '../registry/registry.js';
import type { RouteChange, RouteChangeOptions, RouteRecord } from '../registry/types.js';
import { DEFAULT_ROUTE_OWNER, overriddenOwner, routeJson, routeVersions, type RouteSpec } from './route.js';

export type { RouteChangeOptions };

export interface RouteControl {
  /** The model's route, or null when it has none (MODEL_NOT_FOUND for an unknown model). */
  get(model: string): Promise<object | null>;
  set(model: string, spec: RouteSpec, opts: RouteChangeOptions): Promise<object>;
  /** Removes the route: the model falls back to its production version. */
  clear(model: string, opts: RouteChangeOptions): Promise<object>;
}

/** Loads the named versions of `model` so they serve (the engine's loader); rejects when one fails. */
export type PrepareVersions = (model: string, versions: string[]) => Promise<void>;

/** The route state as the admin API shows it. */
export function routeRecordJson(model: string, r: RouteRecord): object {
  return { model, route: routeJson(r.spec), owner: r.owner, generation: r.generation, updated_by: r.updatedBy, updated_at: r.updatedAt.toISOString() };
}

function changeJson(c: RouteChange): object {
  return {
    model: c.model, route: c.route ? routeJson(c.route) : null, owner: c.owner, generation: c.generation,
    changed: c.changed, audit_id: c.auditId, forced_over: c.forcedOver,
  };
}

/** The default RouteControl: the registry, with `prepare` run before a route is stored. */
export function registryRouteControl(registry: Pick<Registry, 'getRoute' | 'setRoute' | 'clearRoute'>, prepare: PrepareVersions): RouteControl {
  return {
    async get(model) {
      const r = await registry.getRoute(model);
      return r ? routeRecordJson(model, r) : null;
    },
    async set(model, spec, opts) {
      // A change that will be refused for its owner loads nothing first. The registry checks
      // again under the model's lock: this early answer only saves the loading.
      const current = await registry.getRoute(model);
      if (current) overriddenOwner(model, current, opts.owner ?? DEFAULT_ROUTE_OWNER, opts.force === true);
      await prepare(model, routeVersions(spec));
      return changeJson(await registry.setRoute(model, spec, opts));
    },
    async clear(model, opts) {
      return changeJson(await registry.clearRoute(model, opts));
    },
  };
}
