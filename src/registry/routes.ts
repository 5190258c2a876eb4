/**
 * Routes in the registry (table `routes`, migrations 004 and 005). Setting and clearing run like a
 * promotion: one transaction under the model's row lock (tx.ts), one audit row when something
 * changed (none when not), and a NOTIFY on the registry channel delivered at commit. Every
 * change bumps the model's route generation; a clear keeps the row with spec NULL so the
 * generation never goes back (see the migration).
 *
 * Each route has an owner (manual, experiment, deployment; migration 005). A change on behalf
 * of another owner over an experiment's or a deployment's route is refused (ROUTE_OWNED) unless
 * it says `force`, checked under the same lock; the audit row records the owner of the change
 * and, when forced, whose route it replaced.
 *
 * A stored route is kept in its API JSON form and read back through parseRoute, so what the
 * registry returns is exactly what the API accepted.
 */
import { SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { DEFAULT_ROUTE_OWNER, isRouteOwner, overriddenOwner, parseRoute, routeJson, routeVersions, sameRoute, type RouteOwner, type RouteSpec } from '../routing/route.js';
import type { Db, Queryable } from './db.js';
import { requireModel } from './queries.js';
import { num } from './rows.js';
import { lockModel, notifyRoute, writeRouteAudit } from './tx.js';
import type { RouteChange, RouteChangeOptions, RouteRecord } from './types.js';
import * as check from './validate.js';

type RouteRow = {
  model: string;
  spec: unknown;
  generation: unknown;
  owner: string;
  updated_by: string;
  updated_at: Date | string;
};

const ROUTE_COLUMNS = 'model, spec, generation, owner, updated_by, updated_at';

/** A model's route state, cleared ones included: what the watcher compares. */
export interface RouteState {
  spec: RouteSpec | undefined;
  generation: number;
  /** Who made the last change (of a cleared route: who cleared it). */
  owner: RouteOwner;
}

/** A stored route; a row edited by hand into something invalid is an internal error, not a 400. */
function storedSpec(model: string, json: unknown): RouteSpec {
  try {
    return parseRoute(json, model);
  } catch (e) {
    throw new SluiceError('INTERNAL', `the stored route of ${model} is invalid: ${(e as Error).message}`, { cause: e });
  }
}

/** The column's CHECK allows only the known owners; anything else is a schema this code does not know. */
function storedOwner(model: string, owner: string): RouteOwner {
  if (!isRouteOwner(owner)) throw new SluiceError('INTERNAL', `the stored route of ${model} has an unknown owner`);
  return owner;
}

function toState(r: RouteRow): RouteState {
  return { spec: r.spec === null ? undefined : storedSpec(r.model, r.spec), generation: num(r.generation), owner: storedOwner(r.model, r.owner) };
}

/** The model's route (undefined when it has none); MODEL_NOT_FOUND for an unknown model. */
export async function getRoute(db: Db, model: string): Promise<RouteRecord | undefined> {
  const rows = await db.query<RouteRow>(`SELECT ${ROUTE_COLUMNS} FROM routes WHERE model = $1`, [model]);
  const r = rows[0];
  if (!r || r.spec === null) {
    await requireModel(db, model);
    return undefined;
  }
  return {
    spec: storedSpec(model, r.spec),
    owner: storedOwner(model, r.owner),
    generation: num(r.generation),
    updatedBy: r.updated_by,
    updatedAt: r.updated_at instanceof Date ? r.updated_at : new Date(String(r.updated_at)),
  };
}

/** One model's route state (undefined when it never had a route). */
export async function routeState(db: Queryable, model: string): Promise<RouteState | undefined> {
  const rows = await db.query<RouteRow>(`SELECT ${ROUTE_COLUMNS} FROM routes WHERE model = $1`, [model]);
  return rows[0] ? toState(rows[0]) : undefined;
}

/**
 * Every model that has or had a route, with its state. A row that no longer parses (edited by
 * hand) is logged and left out, so that one bad row cannot stop a replica from following the
 * others (or its production versions, read in the same reconcile).
 */
export async function routeStates(db: Queryable): Promise<Map<string, RouteState>> {
  const rows = await db.query<RouteRow>(`SELECT ${ROUTE_COLUMNS} FROM routes ORDER BY model`);
  const out = new Map<string, RouteState>();
  for (const r of rows) {
    try {
      out.set(r.model, toState(r));
    } catch (e) {
      log.error('registry: skipping a stored route that does not parse', { model: r.model, ...errorFields(e) });
    }
  }
  return out;
}

/** Every route in force, by model. */
export async function routes(db: Queryable): Promise<Map<string, { spec: RouteSpec; generation: number }>> {
  const out = new Map<string, { spec: RouteSpec; generation: number }>();
  for (const [model, s] of await routeStates(db)) if (s.spec) out.set(model, { spec: s.spec, generation: s.generation });
  return out;
}

async function lockOrFail(tx: Queryable, model: string): Promise<void> {
  if (!(await lockModel(tx, model))) throw new SluiceError('MODEL_NOT_FOUND', `model ${model} is not registered`);
}

/** Throws VERSION_NOT_FOUND naming every version of the route the model does not have. */
async function requireVersions(tx: Queryable, model: string, versions: string[]): Promise<void> {
  // One statement for any number of versions; the list travels as one JSON parameter.
  const rows = await tx.query<{ version: string }>(
    'SELECT version FROM model_versions WHERE model = $1 AND version IN (SELECT jsonb_array_elements_text($2::jsonb))',
    [model, JSON.stringify(versions)],
  );
  const found = new Set(rows.map((r) => r.version));
  const missing = versions.filter((v) => !found.has(v));
  if (missing.length > 0) {
    throw new SluiceError('VERSION_NOT_FOUND', `model ${model} has no registered version ${missing.join(', ')} (named by the route)`);
  }
}

/** The change options checked: actor, reason, owner (default manual) and force. */
function changeOptions(opts: RouteChangeOptions): { actor: string; reason: string; owner: RouteOwner; force: boolean } {
  const owner = opts.owner ?? DEFAULT_ROUTE_OWNER;
  // From another thread or a hand-written caller: the column's CHECK would refuse it as a 500.
  if (!isRouteOwner(owner)) throw new SluiceError('ROUTE_INVALID', 'owner must be one of "manual", "experiment", "deployment"');
  if (opts.force !== undefined && typeof opts.force !== 'boolean') throw new SluiceError('INVALID_ARGUMENT', 'force must be true or false');
  return { actor: check.actor(opts.actor), reason: check.optionalText(opts.reason, 'reason', 4096), owner, force: opts.force === true };
}

/**
 * Puts `spec` in force for `model` on behalf of `opts.owner` (default manual): the model and
 * every version the route names must be registered (MODEL_NOT_FOUND / VERSION_NOT_FOUND); a
 * route of another controller needs `force` (ROUTE_OWNED). Nothing is written when that route
 * is already in force with that owner.
 */
export async function setRoute(db: Db, model: string, spec: RouteSpec, opts: RouteChangeOptions): Promise<RouteChange> {
  return db.transaction((tx) => setRouteIn(tx, model, spec, opts));
}

/** `setRoute` inside a transaction the caller holds (an experiment writes its rows beside it). */
export async function setRouteIn(tx: Queryable, model: string, spec: RouteSpec, opts: RouteChangeOptions): Promise<RouteChange> {
  const { actor, reason, owner, force } = changeOptions(opts);
  // Checked again here: the spec may come from another thread (a structured clone) or a caller
  // that built it by hand; the stored form is always one parseRoute accepts.
  const route = parseRoute(routeJson(spec), model);
  await lockOrFail(tx, model);
  await requireVersions(tx, model, routeVersions(route));
  const current = await routeState(tx, model);
  if (current?.spec && current.owner === owner && sameRoute(current.spec, route)) {
    return { model, route: current.spec, owner, generation: current.generation, changed: false, auditId: null, forcedOver: null };
  }
  // A new owner of the same route is a change too: it decides who may change it next.
  const forcedOver = current?.spec ? overriddenOwner(model, current, owner, force) : null;
  const generation = (current?.generation ?? 0) + 1;
  const json = routeJson(route);
  await tx.query(
    `INSERT INTO routes (model, spec, generation, owner, updated_by) VALUES ($1, $2::jsonb, $3, $4, $5)
     ON CONFLICT (model) DO UPDATE SET spec = EXCLUDED.spec, generation = EXCLUDED.generation,
       owner = EXCLUDED.owner, updated_by = EXCLUDED.updated_by, updated_at = clock_timestamp()`,
    [model, JSON.stringify(json), generation, owner, actor],
  );
  const auditId = await writeRouteAudit(tx, { model, action: 'route_set', route: json, routeGeneration: generation, routeOwner: owner, forcedOver, actor, reason });
  await notifyRoute(tx, { model, route: generation });
  return { model, route, owner, generation, changed: true, auditId, forcedOver };
}

/**
 * Removes the model's route (it serves its production version again); nothing written when it
 * has none. Clearing another controller's route needs `force` (ROUTE_OWNED).
 */
export async function clearRoute(db: Db, model: string, opts: RouteChangeOptions): Promise<RouteChange> {
  return db.transaction((tx) => clearRouteIn(tx, model, opts));
}

/** `clearRoute` inside a transaction the caller holds. */
export async function clearRouteIn(tx: Queryable, model: string, opts: RouteChangeOptions): Promise<RouteChange> {
  const { actor, reason, owner, force } = changeOptions(opts);
  await lockOrFail(tx, model);
  const current = await routeState(tx, model);
  if (!current?.spec) return { model, route: null, owner: null, generation: current?.generation ?? 0, changed: false, auditId: null, forcedOver: null };
  const forcedOver = overriddenOwner(model, current, owner, force);
  const generation = current.generation + 1;
  await tx.query(
    'UPDATE routes SET spec = NULL, generation = $2, owner = $3, updated_by = $4, updated_at = clock_timestamp() WHERE model = $1',
    [model, generation, owner, actor],
  );
  const auditId = await writeRouteAudit(tx, { model, action: 'route_clear', route: null, routeGeneration: generation, routeOwner: owner, forcedOver, actor, reason });
  await notifyRoute(tx, { model, route: generation });
  return { model, route: null, owner: null, generation, changed: true, auditId, forcedOver };
}
