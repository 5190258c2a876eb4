/**
 * Stage changes: promote a version to a stage, roll production back. Each runs in one
 * transaction under the model's row lock (see tx.ts), writes exactly one audit row when it
 * changes something (none when it does not), and NOTIFYs after a production change.
 *
 * Production is a stack of versions (models.production_history): promoting to production
 * pushes, and the replaced production version is archived. `rollback` pops back to the previous
 * one; `rollback(to)` goes back to a named version that was production before (dropping what was
 * pushed after it). A version that was never production cannot be rolled back to: promote it.
 */
import { SluiceError } from '../errors.js';
import type { Db, Queryable } from './db.js';
import { productionVersion } from './queries.js';
import { lockModel, notifyProduction, writeAudit } from './tx.js';
import { isStage, type ChangeOptions, type Stage, type StageChange } from './types.js';
import * as check from './validate.js';

/** How many past production versions rollback can reach. */
export const MAX_PRODUCTION_HISTORY = 100;

async function lockOrFail(tx: Queryable, model: string): Promise<string[]> {
  const locked = await lockModel(tx, model);
  if (!locked) throw new SluiceError('MODEL_NOT_FOUND', `model ${model} is not registered`);
  return locked.history;
}

async function stageOf(tx: Queryable, model: string, version: string): Promise<Stage> {
  const rows = await tx.query<{ stage: Stage }>('SELECT stage FROM model_versions WHERE model = $1 AND version = $2', [model, version]);
  if (!rows[0]) throw new SluiceError('VERSION_NOT_FOUND', `model ${model} has no registered version ${version}`);
  return rows[0].stage;
}

async function setStage(tx: Queryable, model: string, version: string, stage: Stage): Promise<void> {
  await tx.query('UPDATE model_versions SET stage = $3, stage_changed_at = now() WHERE model = $1 AND version = $2', [model, version, stage]);
}

/** Archives `from` (if any), then makes `to` production: in this order, for the unique index. */
async function switchProduction(tx: Queryable, model: string, from: string | null, to: string, history: string[]): Promise<void> {
  if (from !== null) await setStage(tx, model, from, 'archived');
  await setStage(tx, model, to, 'production');
  await tx.query('UPDATE models SET production_history = $2::jsonb WHERE name = $1', [model, JSON.stringify(history.slice(-MAX_PRODUCTION_HISTORY))]);
  await notifyProduction(tx, { model, version: to });
}

export async function promote(db: Db, model: string, version: string, stage: Stage, opts: ChangeOptions): Promise<StageChange> {
  return db.transaction((tx) => promoteIn(tx, model, version, stage, opts));
}

/**
 * `promote` inside a transaction the caller holds (an experiment's promotion stops it and
 * clears its route in the same transaction). `opts.analysis`, when given, goes on the audit row.
 */
export async function promoteIn(tx: Queryable, model: string, version: string, stage: Stage, opts: ChangeOptions): Promise<StageChange> {
  if (!isStage(stage)) throw new SluiceError('INVALID_ARGUMENT', 'stage must be development, staging, production or archived');
  const actor = check.actor(opts.actor);
  const reason = check.optionalText(opts.reason, 'reason', 4096);
  const history = await lockOrFail(tx, model);
  const fromStage = await stageOf(tx, model, version);
  const unchanged: StageChange = { model, version, stage, fromStage, replacedProduction: null, changed: false, auditId: null };
  if (fromStage === stage) return unchanged;
  if (fromStage === 'production') {
    // Leaving production empty would break "exactly one production version".
    throw new SluiceError('INVALID_ARGUMENT', `${model} ${version} is the production version: promote another version or roll back instead`);
  }
  let replaced: string | null = null;
  if (stage === 'production') {
    replaced = (await productionVersion(tx, model)) ?? null;
    await switchProduction(tx, model, replaced, version, [...history, version]);
  } else {
    await setStage(tx, model, version, stage);
  }
  const auditId = await writeAudit(tx, { model, action: 'promote', fromVersion: replaced, toVersion: version, fromStage, toStage: stage, actor, reason, analysis: opts.analysis ?? null });
  return { ...unchanged, replacedProduction: replaced, changed: true, auditId };
}

export interface RollbackOptions extends ChangeOptions {
  /** A version that was production before; the previous production version when omitted. */
  to?: string;
}

export async function rollback(db: Db, model: string, opts: RollbackOptions): Promise<StageChange> {
  const actor = check.actor(opts.actor);
  const reason = check.optionalText(opts.reason, 'reason', 4096);
  return db.transaction(async (tx) => {
    const history = await lockOrFail(tx, model);
    const current = (await productionVersion(tx, model)) ?? null;
    if (current === null) throw new SluiceError('ROLLBACK_IMPOSSIBLE', `${model} has no production version to roll back from`);
    // The stack's top is the current production version.
    const stack = history[history.length - 1] === current ? history.slice(0, -1) : [...history];
    let target: string;
    let fromStage: Stage | undefined;
    if (opts.to === undefined) {
      while (stack.length > 0 && stack[stack.length - 1] === current) stack.pop();
      if (stack.length === 0) throw new SluiceError('ROLLBACK_IMPOSSIBLE', `${model} has no earlier production version than ${current}`);
      target = stack[stack.length - 1]!;
    } else {
      target = opts.to;
      fromStage = await stageOf(tx, model, target); // VERSION_NOT_FOUND before anything else
      if (target === current) {
        return { model, version: target, stage: 'production', fromStage, replacedProduction: null, changed: false, auditId: null };
      }
      const at = stack.lastIndexOf(target);
      if (at < 0) throw new SluiceError('ROLLBACK_IMPOSSIBLE', `${model} ${target} was never the production version: promote it instead`);
      stack.length = at + 1;
    }
    fromStage ??= await stageOf(tx, model, target);
    await switchProduction(tx, model, current, target, stack);
    const auditId = await writeAudit(tx, { model, action: 'rollback', fromVersion: current, toVersion: target, fromStage, toStage: 'production', actor, reason });
    return { model, version: target, stage: 'production', fromStage, replacedProduction: current, changed: true, auditId };
  });
}
