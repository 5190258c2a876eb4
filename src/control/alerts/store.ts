/**
 * Alerts in the registry database (migration 009): rules created through the API, the current
 * state of each alert (one row per rule and label set), transitions, and silences. Times the
 * evaluator writes come from its clock (a parameter), not the database's, so that a test's
 * controllable clock and the stored history agree.
 */
import { SluiceError } from '../../errors.js';
import type { Queryable } from '../../registry/db.js';
import { num } from '../../registry/rows.js';
import { BUILTIN_RULES } from './builtin.js';
import { labelsKey, parseRule, ruleJson, type AlertRule, type Labels, type Severity } from './rules.js';
import type { Matcher, Silence, SilenceSpec } from './silences.js';
import type { AlertState, AlertStatus } from './state.js';

type Row = Record<string, unknown>;

function date(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}

function dateOrNull(v: unknown): Date | null {
  return v == null ? null : date(v);
}

/** A time as a parameter: ISO text, read the same by both drivers whatever the session's time zone. */
function ts(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

// ---- rules -----------------------------------------------------------------------------------

/** The rules the API created, in creation order (the built-in ones are not stored). */
export async function storedRules(db: Queryable): Promise<AlertRule[]> {
  const rows = await db.query<{ spec: unknown }>('SELECT spec FROM alert_rules ORDER BY created_at, name');
  return rows.map((r) => parseRule(r.spec));
}

/** Every rule evaluated: the built-in ones, then the stored ones. */
export async function allRules(db: Queryable): Promise<AlertRule[]> {
  return [...BUILTIN_RULES, ...(await storedRules(db))];
}

export async function createRule(db: Queryable, rule: AlertRule, actor: string): Promise<void> {
  if (BUILTIN_RULES.some((b) => b.name === rule.name)) throw new SluiceError('ALERT_RULE_EXISTS', `${rule.name} is a built-in alert rule`);
  const rows = await db.query(
    'INSERT INTO alert_rules (name, spec, created_by) VALUES ($1, $2::jsonb, $3) ON CONFLICT (name) DO NOTHING RETURNING name',
    [rule.name, JSON.stringify(ruleJson(rule)), actor],
  );
  if (!rows[0]) throw new SluiceError('ALERT_RULE_EXISTS', `an alert rule named ${rule.name} exists already`);
}

// ---- alerts ----------------------------------------------------------------------------------

export interface AlertRecord extends AlertStatus {
  rule: string;
  labels: Labels;
  severity: Severity;
  summary: string;
  value: number | null;
  evaluatedAt: Date;
}

const ALERT_COLUMNS = 'rule, labels, state, severity, summary, value, active_since, fired_at, resolved_at, notified, evaluated_at';

function toAlert(r: Row): AlertRecord {
  return {
    rule: r.rule as string,
    labels: r.labels as Labels,
    state: r.state as AlertState,
    severity: r.severity as Severity,
    summary: r.summary as string,
    value: r.value == null ? null : num(r.value),
    activeSince: dateOrNull(r.active_since),
    firedAt: dateOrNull(r.fired_at),
    resolvedAt: dateOrNull(r.resolved_at),
    notified: r.notified === true,
    evaluatedAt: date(r.evaluated_at),
  };
}

/** Alerts by state (all but inactive when `state` is undefined), firing first, then newest. */
export async function listAlerts(db: Queryable, state?: AlertState): Promise<AlertRecord[]> {
  const order = "ORDER BY CASE state WHEN 'firing' THEN 0 WHEN 'pending' THEN 1 ELSE 2 END, coalesce(fired_at, active_since, resolved_at, evaluated_at) DESC, rule, labels_key";
  const rows = state === undefined
    ? await db.query(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE state <> 'inactive' ${order}`)
    : await db.query(`SELECT ${ALERT_COLUMNS} FROM alerts WHERE state = $1 ${order}`, [state]);
  return rows.map(toAlert);
}

/** Every alert row, keyed by rule and labels key (the evaluator's starting point). */
export async function alertsByKey(db: Queryable): Promise<Map<string, AlertRecord>> {
  const rows = await db.query(`SELECT ${ALERT_COLUMNS} FROM alerts`);
  return new Map(rows.map((r) => {
    const a = toAlert(r);
    return [alertKey(a.rule, a.labels), a];
  }));
}

export function alertKey(rule: string, labels: Labels): string {
  return `${rule}\u0000${labelsKey(labels)}`;
}

export async function saveAlert(db: Queryable, a: AlertRecord): Promise<void> {
  await db.query(
    `INSERT INTO alerts (rule, labels_key, labels, state, severity, summary, value, active_since, fired_at, resolved_at, notified, evaluated_at)
     VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (rule, labels_key) DO UPDATE SET state = EXCLUDED.state, severity = EXCLUDED.severity, summary = EXCLUDED.summary,
       value = EXCLUDED.value, active_since = EXCLUDED.active_since, fired_at = EXCLUDED.fired_at, resolved_at = EXCLUDED.resolved_at,
       notified = EXCLUDED.notified, evaluated_at = EXCLUDED.evaluated_at`,
    [a.rule, labelsKey(a.labels), JSON.stringify(a.labels), a.state, a.severity, a.summary, a.value, ts(a.activeSince), ts(a.firedAt), ts(a.resolvedAt), a.notified, ts(a.evaluatedAt)],
  );
}

export interface AlertEvent {
  id: number;
  rule: string;
  labels: Labels;
  from: AlertState;
  to: AlertState;
  value: number | null;
  silencedBy: number[];
  notified: boolean;
  at: Date;
}

export async function addEvent(db: Queryable, e: Omit<AlertEvent, 'id'>): Promise<void> {
  await db.query(
    'INSERT INTO alert_events (rule, labels, from_state, to_state, value, silenced_by, notified, at) VALUES ($1, $2::jsonb, $3, $4, $5, $6::bigint[], $7, $8)',
    [e.rule, JSON.stringify(e.labels), e.from, e.to, e.value, e.silencedBy, e.notified, ts(e.at)],
  );
}

/** Transitions, oldest first (of one rule when given). */
export async function alertEvents(db: Queryable, rule?: string, limit = 1_000): Promise<AlertEvent[]> {
  const rows = rule === undefined
    ? await db.query('SELECT * FROM (SELECT * FROM alert_events ORDER BY id DESC LIMIT $1) x ORDER BY id', [limit])
    : await db.query('SELECT * FROM (SELECT * FROM alert_events WHERE rule = $2 ORDER BY id DESC LIMIT $1) x ORDER BY id', [limit, rule]);
  return rows.map((r) => ({
    id: num(r.id), rule: r.rule as string, labels: r.labels as Labels, from: r.from_state as AlertState, to: r.to_state as AlertState,
    value: r.value == null ? null : num(r.value), silencedBy: ((r.silenced_by as unknown[]) ?? []).map(num), notified: r.notified === true, at: date(r.at),
  }));
}

// ---- silences --------------------------------------------------------------------------------

const SILENCE_COLUMNS = 'id, matchers, starts_at, ends_at, comment, created_by, created_at, expired_by';

function toSilence(r: Row): Silence {
  return {
    id: num(r.id), matchers: r.matchers as Matcher[], startsAt: date(r.starts_at), endsAt: date(r.ends_at),
    comment: r.comment as string, createdBy: r.created_by as string, createdAt: date(r.created_at), expiredBy: (r.expired_by as string | null) ?? null,
  };
}

export async function createSilence(db: Queryable, s: SilenceSpec, actor: string): Promise<Silence> {
  const rows = await db.query(
    `INSERT INTO silences (matchers, starts_at, ends_at, comment, created_by) VALUES ($1::jsonb, $2, $3, $4, $5) RETURNING ${SILENCE_COLUMNS}`,
    [JSON.stringify(s.matchers), ts(s.startsAt), ts(s.endsAt), s.comment, actor],
  );
  return toSilence(rows[0]!);
}

/** Silences in force at `now` (`active`), over (`expired`, newest first), or all of them. */
export async function listSilences(db: Queryable, now: Date, which: 'active' | 'expired' | 'all' = 'all'): Promise<Silence[]> {
  const rows = which === 'active'
    ? await db.query(`SELECT ${SILENCE_COLUMNS} FROM silences WHERE starts_at <= $1 AND ends_at > $1 ORDER BY id`, [ts(now)])
    : which === 'expired'
      ? await db.query(`SELECT ${SILENCE_COLUMNS} FROM silences WHERE ends_at <= $1 ORDER BY ends_at DESC, id DESC LIMIT 1000`, [ts(now)])
      // Every silence not over, then the last 1,000 over ones.
      : await db.query(`(SELECT ${SILENCE_COLUMNS} FROM silences WHERE ends_at > $1) UNION ALL (SELECT ${SILENCE_COLUMNS} FROM silences WHERE ends_at <= $1 ORDER BY ends_at DESC LIMIT 1000) ORDER BY id`, [ts(now)]);
  return rows.map(toSilence);
}

/** Ends a silence now (kept, naming who); ALERT_NOT_FOUND for an unknown id. One that is over already stays as it was. */
export async function expireSilence(db: Queryable, id: number, now: Date, actor: string): Promise<Silence> {
  const rows = await db.query(
    `UPDATE silences SET ends_at = greatest(starts_at, $2::timestamptz), expired_by = $3 WHERE id = $1 AND ends_at > $2 RETURNING ${SILENCE_COLUMNS}`,
    [id, ts(now), actor],
  );
  if (rows[0]) return toSilence(rows[0]);
  const old = await db.query(`SELECT ${SILENCE_COLUMNS} FROM silences WHERE id = $1`, [id]);
  if (!old[0]) throw new SluiceError('ALERT_NOT_FOUND', `no silence has id ${id}`);
  return toSilence(old[0]);
}
