/** Read-side registry operations and performance snapshots. */
import { SluiceError } from '../errors.js';
import type { Db, Queryable } from './db.js';
import { AUDIT_COLUMNS, PERFORMANCE_COLUMNS, VERSION_COLUMNS, toAuditEntry, toModelVersion, toPerformance } from './rows.js';
import {
  AUDIT_ACTIONS, STAGES, isStage, type AuditEntry, type AuditQuery, type ModelDetail, type ModelSummary, type ModelVersion,
  type PerformanceInput, type PerformanceSnapshot, type Stage,
} from './types.js';
import * as check from './validate.js';

export async function listModels(db: Db): Promise<ModelSummary[]> {
  const rows = await db.query<{ name: string; created_at: Date; version: string | null; stage: Stage | null }>(
    `SELECT m.name, m.created_at, v.version, v.stage
       FROM models m LEFT JOIN model_versions v ON v.model = m.name
      ORDER BY m.name, v.seq`,
  );
  const out = new Map<string, ModelSummary>();
  for (const r of rows) {
    let s = out.get(r.name);
    if (!s) {
      s = { name: r.name, versionCount: 0, latestVersion: null, productionVersion: null, stages: { development: 0, staging: 0, production: 0, archived: 0 }, createdAt: r.created_at };
      out.set(r.name, s);
    }
    if (r.version === null || r.stage === null) continue;
    s.versionCount++;
    s.latestVersion = r.version;
    s.stages[r.stage]++;
    if (r.stage === 'production') s.productionVersion = r.version;
  }
  return [...out.values()];
}

/** Every model with its versions in registration order, in one query (the engine's repository index). */
export async function versionIndex(db: Db): Promise<Array<{ name: string; versions: string[] }>> {
  const rows = await db.query<{ name: string; version: string | null }>(
    `SELECT m.name, v.version
       FROM models m LEFT JOIN model_versions v ON v.model = m.name
      ORDER BY m.name, v.seq`,
  );
  const out = new Map<string, string[]>();
  for (const r of rows) {
    let vs = out.get(r.name);
    if (!vs) out.set(r.name, (vs = []));
    if (r.version !== null) vs.push(r.version);
  }
  return [...out].map(([name, versions]) => ({ name, versions }));
}

function notRegistered(model: string): SluiceError {
  return new SluiceError('MODEL_NOT_FOUND', `model ${model} is not registered`);
}

/** Throws MODEL_NOT_FOUND unless the model exists. */
export async function requireModel(db: Db, model: string): Promise<void> {
  const exists = await db.query('SELECT 1 FROM models WHERE name = $1', [model]);
  if (exists.length === 0) throw notRegistered(model);
}

/** The model's versions, its existence already checked. */
async function versionRows(db: Db, model: string, stage?: Stage): Promise<ModelVersion[]> {
  const rows = stage === undefined
    ? await db.query(`SELECT ${VERSION_COLUMNS} FROM model_versions WHERE model = $1 ORDER BY seq`, [model])
    : await db.query(`SELECT ${VERSION_COLUMNS} FROM model_versions WHERE model = $1 AND stage = $2 ORDER BY seq`, [model, stage]);
  return rows.map(toModelVersion);
}

export async function versions(db: Db, model: string, opts: { stage?: Stage } = {}): Promise<ModelVersion[]> {
  if (opts.stage !== undefined && !isStage(opts.stage)) throw new SluiceError('INVALID_ARGUMENT', `stage must be one of ${STAGES.join(', ')}`);
  await requireModel(db, model);
  return versionRows(db, model, opts.stage);
}

export async function showModel(db: Db, model: string): Promise<ModelDetail> {
  const m = await db.query<{ name: string; created_at: Date; production_history: string[] }>(
    'SELECT name, created_at, production_history FROM models WHERE name = $1', [model]);
  if (!m[0]) throw notRegistered(model);
  const vs = await versionRows(db, model);
  return {
    name: m[0].name,
    createdAt: m[0].created_at,
    productionVersion: vs.find((v) => v.stage === 'production')?.version ?? null,
    productionHistory: m[0].production_history,
    versions: vs,
  };
}

export async function getVersion(db: Db, model: string, version: string): Promise<ModelVersion> {
  const rows = await db.query(`SELECT ${VERSION_COLUMNS} FROM model_versions WHERE model = $1 AND version = $2`, [model, version]);
  if (rows[0]) return toModelVersion(rows[0]);
  await requireModel(db, model);
  throw new SluiceError('VERSION_NOT_FOUND', `model ${model} has no registered version ${version}`);
}

/** Every model's production version (models without one are absent). */
export async function productionVersions(db: Db): Promise<Map<string, string>> {
  const rows = await db.query<{ model: string; version: string }>("SELECT model, version FROM model_versions WHERE stage = 'production' ORDER BY model");
  return new Map(rows.map((r) => [r.model, r.version]));
}

export async function productionVersion(db: Queryable, model: string): Promise<string | undefined> {
  const rows = await db.query<{ version: string }>("SELECT version FROM model_versions WHERE model = $1 AND stage = 'production'", [model]);
  return rows[0]?.version;
}

export async function audit(db: Db, q: AuditQuery = {}): Promise<AuditEntry[]> {
  const limit = q.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new SluiceError('INVALID_ARGUMENT', 'limit must be an integer in [1, 10000]');
  if (q.beforeId !== undefined && !Number.isSafeInteger(q.beforeId)) throw new SluiceError('INVALID_ARGUMENT', 'beforeId must be an integer');
  if (q.action !== undefined && !AUDIT_ACTIONS.includes(q.action)) throw new SluiceError('INVALID_ARGUMENT', `action must be one of ${AUDIT_ACTIONS.join(', ')}`);
  const order = q.order === 'asc' ? 'ASC' : 'DESC'; // one of two constants, never input
  // NULL parameters switch a filter off, so one statement serves every combination.
  const rows = await db.query(
    `SELECT ${AUDIT_COLUMNS} FROM model_lineage
      WHERE ($1::text IS NULL OR model = $1) AND ($2::text IS NULL OR action = $2) AND ($3::bigint IS NULL OR id < $3)
      ORDER BY id ${order} LIMIT $4`,
    [q.model ?? null, q.action ?? null, q.beforeId ?? null, limit],
  );
  return rows.map(toAuditEntry);
}

export async function recordPerformance(db: Db, model: string, version: string, p: PerformanceInput): Promise<PerformanceSnapshot> {
  if (typeof p !== 'object' || p === null) throw new SluiceError('INVALID_ARGUMENT', 'a performance snapshot must be an object');
  const count = p.predictionCount;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw new SluiceError('INVALID_ARGUMENT', 'predictionCount must be a non-negative integer');
  const memory = check.optionalNumber(p.memoryBytes, 'memoryBytes', 0);
  if (memory !== null && !Number.isSafeInteger(memory)) throw new SluiceError('INVALID_ARGUMENT', 'memoryBytes must be an integer');
  if (p.at !== undefined && (!(p.at instanceof Date) || Number.isNaN(p.at.getTime()))) throw new SluiceError('INVALID_ARGUMENT', 'at must be a valid Date');
  await getVersion(db, model, version); // MODEL_NOT_FOUND / VERSION_NOT_FOUND before the foreign key would say it
  const rows = await db.query(
    `INSERT INTO model_performance (model, version, prediction_count, p50_ms, p95_ms, p99_ms, error_rate, cpu_percent, memory_bytes, extra, at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, COALESCE($11::timestamptz, now()))
     RETURNING ${PERFORMANCE_COLUMNS}`,
    [
      model, version, count,
      check.optionalNumber(p.p50Ms, 'p50Ms', 0), check.optionalNumber(p.p95Ms, 'p95Ms', 0), check.optionalNumber(p.p99Ms, 'p99Ms', 0),
      check.optionalNumber(p.errorRate, 'errorRate', 0, 1), check.optionalNumber(p.cpuPercent, 'cpuPercent', 0), memory,
      JSON.stringify(check.jsonObject(p.extra, 'extra', 64 * 1024)), p.at?.toISOString() ?? null,
    ],
  );
  return toPerformance(rows[0]!);
}

export async function performance(db: Db, model: string, opts: { version?: string; limit?: number } = {}): Promise<PerformanceSnapshot[]> {
  const limit = opts.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new SluiceError('INVALID_ARGUMENT', 'limit must be an integer in [1, 10000]');
  const rows = await db.query(
    `SELECT ${PERFORMANCE_COLUMNS} FROM model_performance
      WHERE model = $1 AND ($2::text IS NULL OR version = $2)
      ORDER BY at DESC, id DESC LIMIT $3`,
    [model, opts.version ?? null, limit],
  );
  return rows.map(toPerformance);
}
