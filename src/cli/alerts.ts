/**
 * `sluice alerts list|silence|silences|unsilence|rules|add-rule`: alerts through the admin API
 * `/v1/admin/alerts` (--url, --key or SLUICE_API_KEY, as `sluice route`). Text by default, the
 * server's answer with `--json`. A silence or rule is checked with the server's own parser
 * before it is sent, so a typo fails here with the same message.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseRule, type AlertRuleJson } from '../control/alerts/rules.js';
import { parseSilence } from '../control/alerts/silences.js';
import { SluiceError } from '../errors.js';
import { adminOptions, adminTarget, request, type AdminTarget } from './admin-client.js';
import { alignedLines } from './table.js';

const BASE = '/v1/admin/alerts';

interface Target {
  url: string;
  key?: string;
}

interface AlertJson {
  rule: string;
  labels: Record<string, string>;
  state: string;
  severity: string;
  summary: string;
  value: number | null;
  active_since: string | null;
  fired_at: string | null;
  resolved_at: string | null;
}

interface SilenceJson {
  id: number;
  matchers: Array<{ name: string; value: string; op: string }>;
  starts_at: string;
  ends_at: string;
  comment: string;
  created_by: string;
  active: boolean;
}

function bad(message: string): SluiceError {
  return new SluiceError('INVALID_ARGUMENT', message);
}

function send(t: AdminTarget, method: string, p: string, body: unknown): Promise<unknown> {
  return request(t, method, p, { chunks: [Buffer.from(JSON.stringify(body))], headers: { 'content-type': 'application/json' } });
}

function print(json: boolean | undefined, answer: unknown, lines: () => string[]): void {
  if (json) console.log(JSON.stringify(answer, null, 2));
  else for (const l of lines()) console.log(l);
}

const labelText = (l: Record<string, string>) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',') || '-';

/** `name=value` or `name!=value` as a silence matcher. */
export function parseMatcher(s: string): { name: string; value: string; op: '=' | '!=' } {
  const m = /^([^=!]+)(!?=)(.*)$/.exec(s);
  if (!m) throw bad(`--match ${JSON.stringify(s)}: write name=value or name!=value (name: rule, severity or a label), e.g. rule=p99-above-slo`);
  return { name: m[1]!, value: m[3]!, op: m[2] as '=' | '!=' };
}

/** A duration like 90s, 30m, 2h, 1d. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(s.trim());
  if (!m) throw bad(`--for ${JSON.stringify(s)}: write a duration such as 30m, 2h or 1d`);
  return Number(m[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export function alertLines(alerts: AlertJson[]): string[] {
  if (alerts.length === 0) return ['no alerts'];
  return alignedLines([
    ['state', 'severity', 'rule', 'labels', 'value', 'since', 'summary'],
    ...alerts.map((a) => [a.state, a.severity, a.rule, labelText(a.labels), a.value === null ? '-' : String(a.value),
      (a.state === 'resolved' ? a.resolved_at : a.state === 'firing' ? a.fired_at : a.active_since) ?? '-', a.summary]),
  ], 4);
}

export function silenceLines(silences: SilenceJson[]): string[] {
  if (silences.length === 0) return ['no silences'];
  return alignedLines([
    ['id', 'state', 'matchers', 'ends', 'by', 'comment'],
    ...silences.map((s) => [String(s.id), s.active ? 'active' : new Date(s.ends_at) <= new Date() ? 'expired' : 'pending', s.matchers.map((m) => `${m.name}${m.op}${m.value}`).join(','), s.ends_at, s.created_by, s.comment]),
  ], 6);
}

export function addAlertCommands(program: Command): void {
  const alerts = program.command('alerts').description('alerts: what fires, silences, rules (admin API)');

  adminOptions(alerts.command('list')
    .description('alerts firing, pending and resolved (firing first)')
    .option('--state <state>', 'only firing, pending, resolved or inactive ones')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (o: Target & { state?: string; json?: boolean }) => {
      const r = (await request(adminTarget(o), 'GET', o.state ? `${BASE}?state=${encodeURIComponent(o.state)}` : BASE)) as AlertJson[];
      print(o.json, r, () => alertLines(r));
    });

  adminOptions(alerts.command('silence')
    .description('hold back notices of matching alerts for a while (they still change state)')
    .option('--match <name=value>', 'a matcher: rule=<rule>, severity=<severity> or <label>=<value>; != negates (repeat; all must hold)', (v: string, all: string[] = []) => [...all, v])
    .option('--for <duration>', 'how long, e.g. 30m, 2h, 1d')
    .option('--until <time>', 'until when (ISO 8601), instead of --for')
    .option('--comment <text>', 'why (required)'))
    .action(async (o: Target & { match?: string[]; for?: string; until?: string; comment?: string }) => {
      if (!o.match?.length) throw bad('give at least one --match, e.g. --match rule=p99-above-slo --match model=ranker');
      if ((o.for === undefined) === (o.until === undefined)) throw bad('give how long as --for 2h or --until 2026-12-03T09:00:00Z (one of them)');
      if (o.comment === undefined) throw bad('say why with --comment');
      const now = new Date();
      const endsAt = o.until ?? new Date(now.getTime() + parseDuration(o.for!)).toISOString();
      const body = { matchers: o.match.map(parseMatcher), ends_at: endsAt, comment: o.comment };
      parseSilence(body, now); // the server's checks, here first
      const s = (await send(adminTarget(o), 'POST', `${BASE}/silences`, body)) as SilenceJson;
      console.log(`silence ${s.id}: ${s.matchers.map((m) => `${m.name}${m.op}${m.value}`).join(', ')} until ${s.ends_at}`);
    });

  adminOptions(alerts.command('silences')
    .description('silences in force and recently over')
    .option('--state <state>', 'only active or expired ones')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (o: Target & { state?: string; json?: boolean }) => {
      const r = (await request(adminTarget(o), 'GET', o.state ? `${BASE}/silences?state=${encodeURIComponent(o.state)}` : `${BASE}/silences`)) as SilenceJson[];
      print(o.json, r, () => silenceLines(r));
    });

  adminOptions(alerts.command('unsilence <id>').description('end a silence now (it is kept in the list as expired)'))
    .action(async (id: string, o: Target) => {
      if (!/^\d+$/.test(id)) throw bad(`silence id ${JSON.stringify(id)}: a whole number (see sluice alerts silences)`);
      const s = (await request(adminTarget(o), 'DELETE', `${BASE}/silences/${id}`)) as SilenceJson;
      console.log(`silence ${s.id}: ended (${s.ends_at})`);
    });

  adminOptions(alerts.command('rules')
    .description('alert rules: the built-in ones, then those created')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (o: Target & { json?: boolean }) => {
      const r = (await request(adminTarget(o), 'GET', `${BASE}/rules`)) as AlertRuleJson[];
      print(o.json, r, () => alignedLines([
        ['rule', 'severity', 'condition', 'for', 'labels', 'summary'],
        ...r.map((x) => [x.name + (x.builtin ? ' (built-in)' : ''), x.severity, `${x.source} ${x.operator} ${x.threshold}`, `${x.for_ms / 1000}s`, labelText(x.labels), x.summary]),
      ], 6));
    });

  adminOptions(alerts.command('add-rule')
    .description('create an alert rule from JSON: {name, source, labels?, operator, threshold, for_ms?, severity?, summary?}')
    .option('--file <rule.json>', 'the rule as JSON'))
    .action(async (o: Target & { file?: string }) => {
      if (o.file === undefined) throw bad('give the rule as --file rule.json');
      let rule: unknown;
      try {
        rule = JSON.parse(await readFile(o.file, 'utf8'));
      } catch (e) {
        throw bad(`cannot read ${o.file} as JSON: ${(e as Error).message}`);
      }
      parseRule(rule); // the server's checks, here first
      const r = (await send(adminTarget(o), 'POST', `${BASE}/rules`, rule)) as AlertRuleJson;
      console.log(`rule ${r.name}: ${r.severity} when ${r.source} ${r.operator} ${r.threshold} for ${r.for_ms / 1000}s`);
    });
}
