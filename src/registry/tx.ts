/**
 * Pieces every registry change uses inside its transaction: the per-model lock, the audit row,
 * and the production-change and route-change notifications.
 *
 * Concurrency choice: row locks, not SERIALIZABLE. Every change to a model's versions or stages
 * first takes `SELECT ... FOR UPDATE` on the model's row in `models`, so changes to one model run
 * one after another (each sees everything the previous one committed: READ COMMITTED takes a new
 * snapshot per statement, after the lock is granted), while different models never wait for
 * each other. The result equals the serial order in which the lock was granted, which is also
 * the order of the audit rows' ids (each is drawn while holding the lock). SERIALIZABLE would
 * give the same guarantee but abort and retry under contention, which promote/rollback storms
 * on one model are made of. On PGlite every transaction is serial anyway; the lock costs nothing.
 */
import type { Queryable } from './db.js';
import { num } from './rows.js';
import { REGISTRY_CHANNEL, type ProductionChange, type RouteAuditEntry, type RouteNotice, type VersionAuditEntry } from './types.js';

/** Locks the model's row until the transaction ends; undefined when there is no such model. */
export async function lockModel(tx: Queryable, model: string): Promise<{ history: string[] } | undefined> {
  const rows = await tx.query<{ production_history: string[] }>('SELECT production_history FROM models WHERE name = $1 FOR UPDATE', [model]);
  return rows[0] ? { history: rows[0].production_history } : undefined;
}

/** Creates the model's row if needed, then locks it. */
export async function ensureAndLockModel(tx: Queryable, model: string): Promise<{ history: string[] }> {
  await tx.query('INSERT INTO models (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [model]);
  return (await lockModel(tx, model))!;
}

/** An audit entry as written: the database assigns its id and time. */
export type AuditRow = Omit<VersionAuditEntry, 'id' | 'at' | 'analysis'> & { analysis?: unknown };

export async function writeAudit(tx: Queryable, a: AuditRow): Promise<number> {
  const rows = await tx.query<{ id: unknown }>(
    `INSERT INTO model_lineage (model, action, from_version, to_version, from_stage, to_stage, actor, reason, analysis)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) RETURNING id`,
    [a.model, a.action, a.fromVersion, a.toVersion, a.fromStage, a.toStage, a.actor, a.reason, a.analysis == null ? null : JSON.stringify(a.analysis)],
  );
  return num(rows[0]!.id);
}

/** Tells every replica (LISTEN sluice_registry); delivered only if the transaction commits. */
export async function notifyProduction(tx: Queryable, change: ProductionChange): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [REGISTRY_CHANNEL, JSON.stringify(change)]);
}

/** A route change's audit entry as written. */
export type RouteAuditRow = Pick<RouteAuditEntry, 'model' | 'action' | 'route' | 'routeGeneration' | 'routeOwner' | 'forcedOver' | 'actor' | 'reason'>;

export async function writeRouteAudit(tx: Queryable, a: RouteAuditRow): Promise<number> {
  const rows = await tx.query<{ id: unknown }>(
    `INSERT INTO model_lineage (model, action, route, route_generation, route_owner, route_forced_over, actor, reason)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8) RETURNING id`,
    [a.model, a.action, a.route === null ? null : JSON.stringify(a.route), a.routeGeneration, a.routeOwner, a.forcedOver, a.actor, a.reason],
  );
  return num(rows[0]!.id);
}

/** Tells every replica a model's route changed (same channel, payload with `route`). */
export async function notifyRoute(tx: Queryable, notice: RouteNotice): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [REGISTRY_CHANNEL, JSON.stringify(notice)]);
}
