/**
 * Deployments in the registry database (migration 010). Every transition runs in ONE
 * transaction with the route change it makes (setRouteIn / clearRouteIn under the model's row
 * lock, owner `deployment`) and, for a promotion, the registry's promotion: the deployment's row,
 * its event (the audit trail) and the traffic never disagree, and a replica that takes over reads
 * exactly where the last one left off.
 */
import { SluiceError } from '../../errors.js';
import type { Db, Queryable } from '../../registry/db.js';
import { productionVersion } from '../../registry/queries.js';
import { clearRouteIn, setRouteIn } from '../../registry/routes.js';
import { num } from '../../registry/rows.js';
import { promoteIn } from '../../registry/stages.js';
import type { RouteChange, StageChange } from '../../registry/types.js';
import { parseRoute, type RouteSpec } from '../../routing/route.js';
import type { VersionWindow } from './judge.js';
import { deploymentJson, parseDeployment, type DeploymentSpec } from './spec.js';

export type DeploymentStatus = 'running' | 'paused' | 'promoted' | 'rolled_back' | 'aborted';
export const ACTIVE: readonly DeploymentStatus[] = ['running', 'paused'];

export interface DeploymentRecord {
  id: number;
  spec: DeploymentSpec;
  stable: string;
  candidate: string;
  status: DeploymentStatus;
  step: number;
  stepStartedAt: Date;
  /** Blue-green: the stable version's window before the switch. */
  baseline: VersionWindow | null;
  lastVerdict: Record<string, unknown> | null;
  outcome: { action: string; reason: string; at: string } | null;
  createdBy: string;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface DeploymentEvent {
  id: number;
  at: Date;
  action: string;
  fromStatus: string;
  toStatus: string;
  step: number;
  share: number;
  actor: string;
  reason: string;
  verdict: unknown;
}

const COLUMNS = 'id, spec, stable_version, candidate_version, status, step, step_started_at, baseline, last_verdict, outcome, created_by, created_at, finished_at';

function date(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}

function toRecord(r: Record<string, unknown>): DeploymentRecord {
  return {
    id: num(r.id), spec: parseDeployment(r.spec), stable: r.stable_version as string, candidate: r.candidate_version as string,
    status: r.status as DeploymentStatus, step: num(r.step), stepStartedAt: date(r.step_started_at),
    baseline: (r.baseline as VersionWindow | null) ?? null,
    lastVerdict: (r.last_verdict as Record<string, unknown> | null) ?? null, outcome: (r.outcome as DeploymentRecord['outcome']) ?? null,
    createdBy: r.created_by as string, createdAt: date(r.created_at), finishedAt: r.finished_at == null ? null : date(r.finished_at),
  };
}

/** The route that gives the candidate `share` of the traffic (canary, blue-green) or mirrors it (shadow). */
export function routeFor(d: { spec: DeploymentSpec; stable: string; candidate: string }, share: number): RouteSpec {
  const json = d.spec.kind === 'shadow'
    ? { variants: [{ name: 'stable', version: d.stable, weight: 1 }], assignment: 'random', shadows: [{ version: d.candidate, fraction: d.spec.fraction }] }
    : share >= 1
      ? { variants: [{ name: 'candidate', version: d.candidate, weight: 1 }], assignment: 'random' }
      : { variants: [{ name: 'stable', version: d.stable, weight: 1 - share }, { name: 'candidate', version: d.candidate, weight: share }], assignment: 'random' };
  return parseRoute(json, d.spec.model);
}

/** The candidate's traffic share at `step` (shadow: none, it only sees copies). */
export function shareAt(d: { spec: DeploymentSpec }, step: number): number {
  if (d.spec.kind === 'canary') return d.spec.steps[Math.min(step, d.spec.steps.length - 1)]!;
  return d.spec.kind === 'blue-green' ? 1 : 0;
}

export async function getDeployment(db: Queryable, id: number, lock = false): Promise<DeploymentRecord> {
  const rows = await db.query(`SELECT ${COLUMNS} FROM deployments WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
  if (!rows[0]) throw new SluiceError('DEPLOYMENT_NOT_FOUND', `no deployment has id ${id}`);
  return toRecord(rows[0]);
}

export async function listDeployments(db: Queryable, active?: boolean): Promise<DeploymentRecord[]> {
  const where = active === undefined ? '' : active ? "WHERE status IN ('running', 'paused')" : "WHERE status NOT IN ('running', 'paused')";
  return (await db.query(`SELECT ${COLUMNS} FROM deployments ${where} ORDER BY id`)).map(toRecord);
}

export async function deploymentEvents(db: Queryable, id: number): Promise<DeploymentEvent[]> {
  const rows = await db.query('SELECT id, at, action, from_status, to_status, step, share, actor, reason, verdict FROM deployment_events WHERE deployment_id = $1 ORDER BY id', [id]);
  return rows.map((r) => ({
    id: num(r.id), at: date(r.at), action: r.action as string, fromStatus: r.from_status as string, toStatus: r.to_status as string,
    step: num(r.step), share: Number(r.share), actor: r.actor as string, reason: r.reason as string, verdict: r.verdict ?? null,
  }));
}

async function event(tx: Queryable, id: number, e: { action: string; from: string; to: string; step: number; share: number; actor: string; reason: string; verdict?: unknown }): Promise<void> {
  await tx.query(
    'INSERT INTO deployment_events (deployment_id, action, from_status, to_status, step, share, actor, reason, verdict) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)',
    [id, e.action, e.from, e.to, e.step, e.share, e.actor, e.reason, e.verdict === undefined ? null : JSON.stringify(e.verdict)],
  );
}

/**
 * Starts `spec`: its row (stable = the given version or production), its first route (owner
 * deployment: an experiment's route is ROUTE_OWNED) and its start event, in one transaction;
 * a blue-green one keeps `baseline(stable)`, the stable version's window before the switch.
 * DEPLOYMENT_ACTIVE when the model has one in progress. The versions must be loaded already.
 */
export async function createDeployment(db: Db, spec: DeploymentSpec, actor: string, baseline?: (stable: string) => Promise<VersionWindow | undefined>): Promise<{ record: DeploymentRecord; route: RouteChange }> {
  return db.transaction(async (tx) => {
    const stable = spec.stable ?? (await productionVersion(tx, spec.model));
    if (stable === undefined) throw new SluiceError('DEPLOYMENT_INVALID', `model ${spec.model} has no production version: name the stable version`);
    if (stable === spec.candidate) throw new SluiceError('DEPLOYMENT_INVALID', `version ${stable} is already production: deploy another version`);
    const draft = { spec, stable, candidate: spec.candidate };
    const before = spec.kind === 'blue-green' ? await baseline?.(stable) : undefined;
    const route = await setRouteIn(tx, spec.model, routeFor(draft, shareAt(draft, 0)), { actor, reason: `deployment ${spec.kind} of ${spec.candidate} started`, owner: 'deployment' });
    const active = await tx.query<{ id: unknown }>("SELECT id FROM deployments WHERE model = $1 AND status IN ('running', 'paused')", [spec.model]);
    if (active[0]) throw new SluiceError('DEPLOYMENT_ACTIVE', `model ${spec.model} has deployment ${num(active[0].id)} in progress`);
    const rows = await tx.query(
      `INSERT INTO deployments (model, kind, spec, stable_version, candidate_version, status, created_by, baseline) VALUES ($1, $2, $3::jsonb, $4, $5, 'running', $6, $7::jsonb) RETURNING ${COLUMNS}`,
      [spec.model, spec.kind, JSON.stringify(deploymentJson(spec)), stable, spec.candidate, actor, before === undefined ? null : JSON.stringify(before)],
    );
    const record = toRecord(rows[0]!);
    await event(tx, record.id, { action: 'start', from: 'new', to: 'running', step: 0, share: shareAt(record, 0), actor, reason: `${spec.kind} of ${spec.candidate} over ${stable}` });
    return { record, route };
  });
}

export interface Transition {
  action: 'advance' | 'promote' | 'rollback' | 'pause' | 'resume' | 'abort' | 'verdict';
  to: DeploymentStatus;
  /** The new step (advance), else unchanged. */
  step?: number;
  actor: string;
  reason: string;
  verdict?: unknown;
}

export interface Applied {
  record: DeploymentRecord;
  route: RouteChange | null;
  promoted: StageChange | null;
}

/**
 * One transition of `d` inside the caller's transaction (d read FOR UPDATE in it): the row, the
 * event, and the traffic: advance puts the new step's route in force; promote makes the
 * candidate production and clears the route; rollback and abort clear it (production, the stable
 * version, serves at once); pause and resume leave it.
 */
export async function applyIn(tx: Queryable, d: DeploymentRecord, t: Transition): Promise<Applied> {
  if (!ACTIVE.includes(d.status)) throw new SluiceError('DEPLOYMENT_FINISHED', `deployment ${d.id} is ${d.status.replace('_', ' ')}`);
  const step = t.step ?? d.step;
  const finished = !ACTIVE.includes(t.to);
  let route: RouteChange | null = null;
  let promoted: StageChange | null = null;
  const opts = { actor: t.actor, reason: `deployment ${d.id}: ${t.action}: ${t.reason}`.slice(0, 4096), owner: 'deployment' as const };
  if (t.action === 'advance') route = await setRouteIn(tx, d.spec.model, routeFor(d, shareAt(d, step)), opts);
  if (t.action === 'promote') promoted = await promoteIn(tx, d.spec.model, d.candidate, 'production', { ...opts, analysis: t.verdict });
  if (finished) {
    const owner = await tx.query<{ owner: string; spec: unknown }>('SELECT owner, spec FROM routes WHERE model = $1', [d.spec.model]);
    // A route another owner forced over the deployment's is that owner's to keep.
    if (owner[0]?.spec != null && owner[0].owner === 'deployment') route = await clearRouteIn(tx, d.spec.model, opts);
  }
  const outcome = finished ? { action: t.action, reason: t.reason, at: new Date().toISOString() } : null;
  await tx.query(
    `UPDATE deployments SET status = $2, step = $3, step_started_at = CASE WHEN $3 <> step OR $5 THEN clock_timestamp() ELSE step_started_at END,
       last_verdict = coalesce($4::jsonb, last_verdict), outcome = coalesce($6::jsonb, outcome),
       finished_at = CASE WHEN $7 THEN clock_timestamp() ELSE finished_at END WHERE id = $1`,
    [d.id, t.to, step, t.verdict === undefined ? null : JSON.stringify(t.verdict), t.action === 'resume', outcome === null ? null : JSON.stringify(outcome), finished],
  );
  await event(tx, d.id, { action: t.action, from: d.status, to: t.to, step, share: finished && t.action !== 'promote' ? 0 : shareAt(d, step), actor: t.actor, reason: t.reason, verdict: t.verdict });
  return { record: await getDeployment(tx, d.id), route, promoted };
}

/** `applyIn` in its own transaction, `check` run on the locked row first. */
export async function apply(db: Db, id: number, t: Transition, check?: (d: DeploymentRecord) => void): Promise<Applied> {
  return db.transaction(async (tx) => {
    const d = await getDeployment(tx, id, true);
    check?.(d);
    return applyIn(tx, d, t);
  });
}

/** Keeps the judge's latest verdict without a transition (the controller, every look). */
export async function saveVerdict(tx: Queryable, id: number, verdict: unknown): Promise<void> {
  await tx.query('UPDATE deployments SET last_verdict = $2::jsonb WHERE id = $1', [id, JSON.stringify(verdict)]);
}
