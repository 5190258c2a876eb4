/**
 * The alert operations of the admin service (issue #15): list alerts, create and list rules,
 * create, list and expire silences. Answers are the API's JSON; bodies are checked by the alerts
 * code's own parsers (ALERT_INVALID naming the field), so every transport answers alike.
 */
import type { Db } from '../registry/db.js';
import { BUILTIN_RULES } from '../control/alerts/builtin.js';
import { invalid, parseRule, ruleJson } from '../control/alerts/rules.js';
import { parseSilence, silenceJson } from '../control/alerts/silences.js';
import { ALERT_STATES, type AlertState } from '../control/alerts/state.js';
import { createRule, createSilence, expireSilence, listAlerts, listSilences, storedRules, type AlertRecord } from '../control/alerts/store.js';

export interface AlertsService {
  /** Alerts of one state (firing, pending, resolved, inactive), or all but inactive ones. */
  listAlerts(state?: string): Promise<object[]>;
  createAlertRule(body: unknown, actor: string): Promise<object>;
  /** Built-in rules first, then the created ones. */
  listAlertRules(): Promise<object[]>;
  createSilence(body: unknown, actor: string): Promise<object>;
  /** `state`: active, expired, or (undefined) every silence not over plus the last 1,000 over. */
  listSilences(state?: string): Promise<object[]>;
  /** Ends a silence now (it is kept, naming who); `id` as the path gives it. */
  deleteSilence(id: string, actor: string): Promise<object>;
}

export const ALERT_OPERATIONS = [
  'listAlerts', 'createAlertRule', 'listAlertRules', 'createSilence', 'listSilences', 'deleteSilence',
] as const satisfies ReadonlyArray<keyof AlertsService>;

const iso = (d: Date | null) => d?.toISOString() ?? null;

function alertJson(a: AlertRecord): Record<string, unknown> {
  return {
    rule: a.rule, labels: a.labels, state: a.state, severity: a.severity, summary: a.summary, value: a.value,
    active_since: iso(a.activeSince), fired_at: iso(a.firedAt), resolved_at: iso(a.resolvedAt),
    notified: a.notified, evaluated_at: a.evaluatedAt.toISOString(),
  };
}

export function alertsService(db: Db, clock: () => Date = () => new Date()): AlertsService {
  return {
    async listAlerts(state) {
      if (state !== undefined && !ALERT_STATES.includes(state as AlertState)) throw invalid(`state must be one of ${ALERT_STATES.join(', ')}`);
      return (await listAlerts(db, state as AlertState | undefined)).map(alertJson);
    },
    async createAlertRule(body, actor) {
      const rule = parseRule(body);
      await createRule(db, rule, actor);
      return ruleJson(rule);
    },
    listAlertRules: async () => [...BUILTIN_RULES, ...(await storedRules(db))].map(ruleJson),
    async createSilence(body, actor) {
      const now = clock();
      return silenceJson(await createSilence(db, parseSilence(body, now), actor), now);
    },
    async listSilences(state) {
      if (state !== undefined && state !== 'active' && state !== 'expired') throw invalid('state must be active or expired');
      const now = clock();
      return (await listSilences(db, now, state ?? 'all')).map((s) => silenceJson(s, now));
    },
    async deleteSilence(id, actor) {
      const n = Number(id);
      if (!/^\d{1,15}$/.test(id) || !Number.isSafeInteger(n)) throw invalid('a silence id is a whole number');
      const now = clock();
      return silenceJson(await expireSilence(db, n, now, actor), now);
    },
  };
}
