/**
 * Retraining requests and schedules in the registry database (migration 011). A request is a
 * row that never changes (the audit trail); automatic triggers (performance, drift, schedule)
 * do not repeat within a cooldown per model and trigger, checked under the model's row lock so
 * that two replicas hearing the same alert record one request.
 */
import { SluiceError } from '../../errors.js';
import type { Db, Queryable } from '../../registry/db.js';
import { num } from '../../registry/rows.js';
import { lockModel } from '../../registry/tx.js';

export const TRIGGERS = ['manual', 'schedule', 'performance', 'drift'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export interface RetrainingRequest {
  id: number;
  model: string;
  version: string | null;
  trigger: Trigger;
  reason: string;
  details: Record<string, unknown>;
  actor: string;
  createdAt: Date;
}

export interface Schedule {
  model: string;
  everyS: number;
  nextAt: Date;
  updatedBy: string;
}

const COLUMNS = 'id, model, version, trigger, reason, details, actor, created_at';

function date(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}

function toRequest(r: Record<string, unknown>): RetrainingRequest {
  return {
    id: num(r.id), model: r.model as string, version: (r.version as string | null) ?? null, trigger: r.trigger as Trigger,
    reason: r.reason as string, details: (r.details as Record<string, unknown>) ?? {}, actor: r.actor as string, createdAt: date(r.created_at),
  };
}

export interface NewRequest {
  model: string;
  version?: string;
  trigger: Trigger;
  reason: string;
  details?: Record<string, unknown>;
  actor: string;
}

/**
 * Records a request; undefined when an automatic one of the same model and trigger was made
 * less than `cooldownMs` ago (manual requests always record). MODEL_NOT_FOUND for an unknown model.
 */
export async function recordRequest(db: Db, r: NewRequest, cooldownMs: number): Promise<RetrainingRequest | undefined> {
  return db.transaction(async (tx) => recordIn(tx, r, cooldownMs));
}

async function recordIn(tx: Queryable, r: NewRequest, cooldownMs: number): Promise<RetrainingRequest | undefined> {
  if (!(await lockModel(tx, r.model))) throw new SluiceError('MODEL_NOT_FOUND', `model ${r.model} is not registered`);
  if (r.trigger !== 'manual') {
    const recent = await tx.query(
      "SELECT 1 FROM retraining_requests WHERE model = $1 AND trigger = $2 AND created_at > clock_timestamp() - ($3::float8 * interval '1 millisecond') LIMIT 1",
      [r.model, r.trigger, cooldownMs],
    );
    if (recent[0]) return undefined;
  }
  const rows = await tx.query(
    `INSERT INTO retraining_requests (model, version, trigger, reason, details, actor) VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING ${COLUMNS}`,
    [r.model, r.version ?? null, r.trigger, r.reason, JSON.stringify(r.details ?? {}), r.actor],
  );
  return toRequest(rows[0]!);
}

export async function listRequests(db: Queryable, model?: string, limit = 100): Promise<RetrainingRequest[]> {
  const rows = model === undefined
    ? await db.query(`SELECT ${COLUMNS} FROM retraining_requests ORDER BY id DESC LIMIT $1`, [limit])
    : await db.query(`SELECT ${COLUMNS} FROM retraining_requests WHERE model = $1 ORDER BY id DESC LIMIT $2`, [model, limit]);
  return rows.map(toRequest);
}

export async function setSchedule(db: Db, model: string, everyS: number, actor: string): Promise<Schedule> {
  return db.transaction(async (tx) => {
    if (!(await lockModel(tx, model))) throw new SluiceError('MODEL_NOT_FOUND', `model ${model} is not registered`);
    const rows = await tx.query<Record<string, unknown>>(
      `INSERT INTO retraining_schedules (model, every_s, next_at, updated_by) VALUES ($1, $2::bigint, clock_timestamp() + ($4::float8 * interval '1 second'), $3)
       ON CONFLICT (model) DO UPDATE SET every_s = EXCLUDED.every_s, next_at = EXCLUDED.next_at, updated_by = EXCLUDED.updated_by, updated_at = clock_timestamp()
       RETURNING model, every_s, next_at, updated_by`,
      [model, everyS, actor, everyS],
    );
    const r = rows[0]!;
    return { model: r.model as string, everyS: num(r.every_s), nextAt: date(r.next_at), updatedBy: r.updated_by as string };
  });
}

export async function clearSchedule(db: Db, model: string): Promise<boolean> {
  const rows = await db.query('DELETE FROM retraining_schedules WHERE model = $1 RETURNING model', [model]);
  return rows.length > 0;
}

/**
 * Records a request for every schedule that is due at `now` and moves it on by whole periods
 * (a replica that was down for three periods asks once, not three times). Runs in one
 * transaction; rows locked with SKIP LOCKED, so two replicas never take the same schedule.
 */
export async function fireDueSchedules(db: Db, actor: string): Promise<RetrainingRequest[]> {
  return db.transaction(async (tx) => {
    const due = await tx.query<Record<string, unknown>>(
      'SELECT model, every_s, next_at FROM retraining_schedules WHERE next_at <= clock_timestamp() ORDER BY model FOR UPDATE SKIP LOCKED',
    );
    const out: RetrainingRequest[] = [];
    for (const s of due) {
      const everyS = num(s.every_s);
      const r = await recordIn(tx, { model: s.model as string, trigger: 'schedule', reason: `every ${everyS} s`, details: { every_s: everyS, due_at: date(s.next_at).toISOString() }, actor }, 0);
      if (r) out.push(r);
      await tx.query(
        `UPDATE retraining_schedules SET next_at = next_at + (ceil(extract(epoch FROM clock_timestamp() - next_at) / every_s + 1e-9) * every_s) * interval '1 second'
          WHERE model = $1`, [s.model],
      );
    }
    return out;
  });
}

export function requestJson(r: RetrainingRequest): Record<string, unknown> {
  return { id: r.id, model: r.model, version: r.version, trigger: r.trigger, reason: r.reason, details: r.details, actor: r.actor, created_at: r.createdAt.toISOString() };
}
