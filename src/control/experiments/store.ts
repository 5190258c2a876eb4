/**
 * Experiments in the registry database (migration 008). Every change that moves traffic runs in
 * ONE transaction with the route change it makes (src/registry/routes.ts setRouteIn /
 * clearRouteIn, under the model's row lock): an experiment row never exists without its route,
 * a route generation of an experiment never exists without its period row (the triggers need it
 * to count the units decided under it), and a stop or a promotion is all or nothing.
 */
import { SluiceError } from '../../errors.js';
import type { Db, Queryable } from '../../registry/db.js';
import { clearRouteIn, setRouteIn } from '../../registry/routes.js';
import { promoteIn as promoteVersionIn } from '../../registry/stages.js';
import { num } from '../../registry/rows.js';
import type { RouteChange, StageChange } from '../../registry/types.js';
import { parseRoute, type RouteSpec } from '../../routing/route.js';
import { experimentJson, parseExperiment, type ExperimentSpec } from './spec.js';

export type ExperimentStatus = 'running' | 'stopped';

/** Why an experiment stopped. */
export interface Outcome {
  action: 'winner' | 'futility' | 'harm' | 'manual';
  /** The winning variant (action winner), or the harmful one (harm). */
  variant?: string;
  reason: string;
  at: string;
}

export interface ExperimentRecord {
  id: number;
  spec: ExperimentSpec;
  status: ExperimentStatus;
  outcome: Outcome | null;
  promotedVersion: string | null;
  /** The sequential tests' running figures (analysis.ts). */
  state: Record<string, unknown>;
  lastResults: Record<string, unknown> | null;
  analyzedAt: Date | null;
  createdBy: string;
  startedAt: Date;
  stoppedAt: Date | null;
}

/** One weight period: the route generation, its weights (spec variant order), when it began. */
export interface Period {
  routeGen: number;
  weights: number[];
  startedAt: Date;
}

type Row = Record<string, unknown>;

const COLUMNS = 'id, spec, status, outcome, promoted_version, state, last_results, analyzed_at, created_by, started_at, stopped_at';

function date(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}

function toRecord(r: Row): ExperimentRecord {
  return {
    id: num(r.id),
    spec: parseExperiment(r.spec),
    status: r.status as ExperimentStatus,
    outcome: (r.outcome as Outcome | null) ?? null,
    promotedVersion: (r.promoted_version as string | null) ?? null,
    state: (r.state as Record<string, unknown>) ?? {},
    lastResults: (r.last_results as Record<string, unknown> | null) ?? null,
    analyzedAt: r.analyzed_at == null ? null : date(r.analyzed_at),
    createdBy: r.created_by as string,
    startedAt: date(r.started_at),
    stoppedAt: r.stopped_at == null ? null : date(r.stopped_at),
  };
}

export async function getExperiment(db: Queryable, name: string, lock = false): Promise<ExperimentRecord> {
  const rows = await db.query(`SELECT ${COLUMNS} FROM experiments WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [name]);
  if (!rows[0]) throw new SluiceError('EXPERIMENT_NOT_FOUND', `no experiment is named ${name}`);
  return toRecord(rows[0]);
}

export async function listExperiments(db: Queryable, status?: ExperimentStatus): Promise<ExperimentRecord[]> {
  const rows = status === undefined
    ? await db.query(`SELECT ${COLUMNS} FROM experiments ORDER BY id`)
    : await db.query(`SELECT ${COLUMNS} FROM experiments WHERE status = $1 ORDER BY id`, [status]);
  return rows.map(toRecord);
}

export async function periods(db: Queryable, id: number): Promise<Period[]> {
  const rows = await db.query<{ route_gen: unknown; weights: number[]; started_at: unknown }>(
    'SELECT route_gen, weights, started_at FROM experiment_periods WHERE experiment_id = $1 ORDER BY route_gen', [id],
  );
  return rows.map((r) => ({ routeGen: num(r.route_gen), weights: r.weights, startedAt: date(r.started_at) }));
}

async function addPeriod(tx: Queryable, spec: ExperimentSpec, id: number, change: RouteChange): Promise<void> {
  const route = change.route!;
  await tx.query(
    'INSERT INTO experiment_periods (model, route_gen, experiment_id, weights, per_event) VALUES ($1, $2, $3, $4::jsonb, $5)',
    [spec.model, change.generation, id, JSON.stringify(route.variants.map((v) => v.weight)), route.assignment === 'random'],
  );
}

/**
 * Starts `spec`: its row, its route (owner experiment; a deployment's route is ROUTE_OWNED) and
 * its first period, in one transaction. EXPERIMENT_EXISTS for a used name, EXPERIMENT_RUNNING
 * when the model runs another one. The versions must be loaded already (the caller prepares).
 */
export async function createExperiment(db: Db, spec: ExperimentSpec, actor: string): Promise<{ record: ExperimentRecord; route: RouteChange }> {
  return db.transaction(async (tx) => {
    const taken = await tx.query('SELECT 1 FROM experiments WHERE name = $1', [spec.name]);
    if (taken[0]) throw new SluiceError('EXPERIMENT_EXISTS', `an experiment named ${spec.name} exists already`);
    // The route change below locks the model's row first: a concurrent start on the same model
    // waits here and then finds this one running (the partial unique index is the backstop).
    const route = await setRouteIn(tx, spec.model, spec.route, { actor, reason: `experiment ${spec.name} started`, owner: 'experiment' });
    const running = await tx.query<{ name: string }>("SELECT name FROM experiments WHERE model = $1 AND status = 'running'", [spec.model]);
    if (running[0]) throw new SluiceError('EXPERIMENT_RUNNING', `model ${spec.model} runs experiment ${running[0].name}: stop it first`);
    const rows = await tx.query(
      `INSERT INTO experiments (name, model, spec, status, created_by) VALUES ($1, $2, $3::jsonb, 'running', $4) RETURNING ${COLUMNS}`,
      [spec.name, spec.model, JSON.stringify(experimentJson(spec)), actor],
    );
    const record = toRecord(rows[0]!);
    await addPeriod(tx, spec, record.id, route);
    return { record, route };
  });
}

function requireRunning(e: ExperimentRecord, what: string): void {
  if (e.status !== 'running') throw new SluiceError('EXPERIMENT_STOPPED', `experiment ${e.spec.name} is stopped: ${what}`);
}

/** New weights for a running experiment: a new route generation and period, in one transaction. */
export async function changeWeights(db: Db, name: string, route: (current: RouteSpec) => RouteSpec, actor: string, reason?: string): Promise<RouteChange> {
  return db.transaction(async (tx) => {
    const e = await getExperiment(tx, name, true);
    requireRunning(e, 'its weights cannot change');
    const current = await tx.query<{ spec: unknown; owner: string }>('SELECT spec, owner FROM routes WHERE model = $1', [e.spec.model]);
    const now = current[0]?.spec ? parseRoute(current[0].spec, e.spec.model) : e.spec.route;
    const change = await setRouteIn(tx, e.spec.model, route(now), { actor, reason: reason ?? `experiment ${name}: weights changed`, owner: 'experiment' });
    if (change.changed) await addPeriod(tx, e.spec, e.id, change);
    return change;
  });
}

/**
 * Stops a running experiment inside `tx`: status, outcome, its periods frozen (later decisions
 * and feedback no longer count) and its route cleared, so the model serves its production
 * version again. A route another owner forced over it is left to that owner.
 */
export async function stopIn(tx: Queryable, e: ExperimentRecord, outcome: Omit<Outcome, 'at'>, actor: string): Promise<RouteChange | null> {
  requireRunning(e, 'it was stopped already');
  const at = new Date().toISOString();
  await tx.query(
    "UPDATE experiments SET status = 'stopped', outcome = $2::jsonb, stopped_at = clock_timestamp() WHERE id = $1",
    [e.id, JSON.stringify({ ...outcome, at })],
  );
  await tx.query('UPDATE experiment_periods SET active = false WHERE experiment_id = $1', [e.id]);
  const owner = await tx.query<{ owner: string; spec: unknown }>('SELECT owner, spec FROM routes WHERE model = $1 FOR UPDATE', [e.spec.model]);
  if (owner[0]?.spec == null || owner[0].owner !== 'experiment') return null;
  return clearRouteIn(tx, e.spec.model, { actor, reason: `experiment ${e.spec.name} stopped: ${outcome.action}`, owner: 'experiment' });
}

export async function stopExperiment(db: Db, name: string, outcome: Omit<Outcome, 'at'>, actor: string): Promise<{ record: ExperimentRecord; route: RouteChange | null }> {
  return db.transaction(async (tx) => {
    const e = await getExperiment(tx, name, true);
    const route = await stopIn(tx, e, outcome, actor);
    return { record: await getExperiment(tx, name), route };
  });
}

/**
 * Makes `version` production with the analysis on its audit row, and archives the experiment's
 * other versions that are not production; stops the experiment first when it runs. One
 * transaction: the experiment is promoted completely or not at all.
 */
export interface Promotion {
  record: ExperimentRecord;
  promoted: StageChange;
  archived: StageChange[];
  /** The experiment's route cleared by the stop (null: it was stopped already, or not its route). */
  route: RouteChange | null;
}

export async function promoteExperiment(db: Db, name: string, variant: string, analysis: unknown, actor: string, stopOutcome: Omit<Outcome, 'at'> | null): Promise<Promotion> {
  return db.transaction(async (tx) => promoteIn(tx, await getExperiment(tx, name, true), variant, analysis, actor, stopOutcome));
}

/** `promoteExperiment` inside the caller's transaction, `e` read FOR UPDATE in it. */
export async function promoteIn(tx: Queryable, e: ExperimentRecord, variant: string, analysis: unknown, actor: string, stopOutcome: Omit<Outcome, 'at'> | null): Promise<Promotion> {
  const name = e.spec.name;
  if (e.promotedVersion !== null) throw new SluiceError('EXPERIMENT_STOPPED', `experiment ${name} promoted version ${e.promotedVersion} already`);
  const v = e.spec.variants.find((x) => x.name === variant);
  if (!v) throw new SluiceError('EXPERIMENT_INVALID', `variant ${JSON.stringify(variant)} is not one of experiment ${name}'s (${e.spec.variants.map((x) => x.name).join(', ')})`);
  const route = e.status === 'running' ? await stopIn(tx, e, stopOutcome ?? { action: 'manual', variant, reason: `promoted ${variant} by hand` }, actor) : null;
  const reason = `experiment ${name}: ${variant} (version ${v.version}) promoted`;
  const promoted = await promoteVersionIn(tx, e.spec.model, v.version, 'production', { actor, reason, analysis });
  const archived: StageChange[] = [];
  for (const other of e.spec.variants) {
    if (other.version === v.version) continue;
    const stage = await tx.query<{ stage: string }>('SELECT stage FROM model_versions WHERE model = $1 AND version = $2', [e.spec.model, other.version]);
    if (stage[0] && stage[0].stage !== 'archived' && stage[0].stage !== 'production') {
      archived.push(await promoteVersionIn(tx, e.spec.model, other.version, 'archived', { actor, reason: `experiment ${name}: lost to ${variant}` }));
    }
  }
  await tx.query('UPDATE experiments SET promoted_version = $2 WHERE id = $1', [e.id, v.version]);
  return { record: await getExperiment(tx, name), promoted, archived, route };
}

/** Keeps the latest analysis and the sequential tests' running figures (the analysis loop). */
export async function saveAnalysis(tx: Queryable, id: number, state: Record<string, unknown>, results: Record<string, unknown>): Promise<void> {
  await tx.query(
    'UPDATE experiments SET state = $2::jsonb, last_results = $3::jsonb, analyzed_at = clock_timestamp() WHERE id = $1',
    [id, JSON.stringify(state), JSON.stringify(results)],
  );
}

/**
 * Pre-period covariates for CUPED, by unit id, stored on the experiment's units exposed so far
 * (a covariate is a figure from before the experiment: upload it once units are in). Returns
 * how many units took one; ids not (yet) exposed are not stored, and the caller says so.
 */
export async function storeCovariates(db: Db, id: number, values: Array<[string, number]>): Promise<number> {
  if (values.length === 0) return 0;
  const rows = await db.query<{ n: unknown }>(
    `WITH v AS (SELECT u, c FROM jsonb_to_recordset($2::text::jsonb) AS x(u text, c float8))
     , up AS (UPDATE experiment_units e SET covariate = v.c FROM v WHERE e.experiment_id = $1 AND e.unit = v.u RETURNING 1)
     SELECT count(*) AS n FROM up`,
    [id, JSON.stringify(values.map(([u, c]) => ({ u, c })))],
  );
  return num(rows[0]!.n);
}
