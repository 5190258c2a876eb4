/**
 * `POST /v1/admin/models/{m}/evaluate`: off-policy evaluation (src/learn/ope.ts) of a candidate
 * policy on a bandit model's logged decisions and rewards. Body:
 *   {"policy": "uniform" | {"arm": k} | {"version": "v"}, "version"?: logging version,
 *    "since"?: ms, "until"?: ms, "level"?: 0.95, "lambda"?: 1}
 * A `{"version": v}` candidate is that bandit version as it would decide now (its learned
 * state on this replica, or its latest checkpoint, or its prior). Bad fields: OPE_INVALID naming
 * the field.
 */
import { SluiceError } from '../errors.js';
import { checkName } from '../names.js';
import type { Queryable } from '../registry/db.js';
import { loadLoggedEvents } from '../learn/ope-data.js';
import { evaluatePolicy, fitRewardModel, fixedArmPolicy, uniformPolicy, type CandidatePolicy, type OpeReport } from '../learn/ope.js';

/** Where a `{"version": v}` candidate comes from (the engine). */
export interface PolicySource {
  candidatePolicy(model: string, version: string): Promise<CandidatePolicy>;
}

const FIELDS = ['policy', 'version', 'since', 'until', 'level', 'lambda'];

function invalid(msg: string): SluiceError {
  return new SluiceError('OPE_INVALID', msg);
}

function optNumber(o: Record<string, unknown>, k: string): number | undefined {
  const v = Object.hasOwn(o, k) ? o[k] : undefined;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(`${k} must be a finite number`);
  return v;
}

export async function evaluateRequest(db: Queryable, source: PolicySource, model: string, body: unknown): Promise<OpeReport & { model: string; version: string | null }> {
  checkName(model, 'model name');
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('the body must be a JSON object');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.includes(k)) throw invalid(`unknown field ${JSON.stringify(k.slice(0, 64))} (fields: ${FIELDS.join(', ')})`);
  const version = Object.hasOwn(o, 'version') ? o.version : undefined;
  if (version !== undefined) checkName(version, 'version');
  const { events, arms } = await loadLoggedEvents(db, model, {
    version: version as string | undefined,
    since: optNumber(o, 'since'),
    until: optNumber(o, 'until'),
  });
  const raw = Object.hasOwn(o, 'policy') ? o.policy : undefined;
  let policy: CandidatePolicy;
  if (raw === 'uniform') {
    policy = uniformPolicy(Math.max(arms, 1));
  } else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && Object.keys(raw).length === 1 && Object.hasOwn(raw, 'arm')) {
    const arm = (raw as { arm: unknown }).arm;
    if (!Number.isInteger(arm) || (arm as number) < 0) throw invalid('policy.arm must be an arm index (an integer >= 0)');
    policy = fixedArmPolicy(Math.max(arms, (arm as number) + 1), arm as number);
  } else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && Object.keys(raw).length === 1 && Object.hasOwn(raw, 'version')) {
    const v = (raw as { version: unknown }).version;
    checkName(v, 'policy.version');
    policy = await source.candidatePolicy(model, v as string);
  } else {
    throw invalid('policy must be "uniform", {"arm": k} or {"version": "v"}');
  }
  const lambda = optNumber(o, 'lambda');
  const level = optNumber(o, 'level');
  const rewardModel = events.length > 0 ? fitRewardModel(events, policy.arms, lambda === undefined ? {} : { lambda }) : undefined;
  const report = evaluatePolicy(events, policy, { ...(rewardModel ? { rewardModel } : {}), ...(level === undefined ? {} : { level }) });
  return { model, version: (version as string | undefined) ?? null, ...report };
}
