/**
 * The alerts admin API on a whole server (PGlite, two I/O threads so that calls are forwarded
 * to the main thread too) and `sluice alerts ...` through the built CLI (`npx tsc -p
 * tsconfig.build.json` first): create and list rules (built-in ones first), refusals with
 * stable codes, list alerts by state (rows the evaluator would write, put in the database
 * here: the server's Signals knows no source yet), create, list and end silences.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDuration, parseMatcher } from '../../src/cli/alerts.js';
import { BUILTIN_RULES } from '../../src/control/alerts/builtin.js';
import { saveAlert } from '../../src/control/alerts/store.js';
import { sluice } from '../helpers/cli.js';
import { admin, startFull, type FullServer } from '../helpers/server.js';

const A = '/v1/admin/alerts';
const rule = { name: 'queue-deep', source: 'queue_depth', labels: { model: 'demo-logistic' }, operator: '>', threshold: 100, for_ms: 5_000, severity: 'critical', summary: 'the queue is deep' };

describe('alerts admin API and CLI', () => {
  let s: FullServer;
  let dir: string;
  const call = (method: string, p: string, body?: unknown, key: string | null = s.adminKey) => admin(s, key ?? undefined, method, p, body);
  const cli = (...args: string[]) => sluice(['alerts', ...args, '--url', s.url, '--key', s.adminKey]);

  beforeAll(async () => {
    s = await startFull({ ioThreads: 2, startupModels: 'none', alertIntervalMs: 60_000 });
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-alerts-cli-'));
  }, 60_000);
  afterAll(async () => {
    await s?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates rules and lists them after the built-in ones; refuses bad ones with stable codes', async () => {
    expect(await call('POST', `${A}/rules`, rule, null)).toMatchObject({ status: 401, json: { code: 'UNAUTHENTICATED' } });
    expect(await call('POST', `${A}/rules`, rule)).toEqual({ status: 200, json: rule });
    expect(await call('POST', `${A}/rules`, rule)).toMatchObject({ status: 409, json: { code: 'ALERT_RULE_EXISTS' } });
    expect(await call('POST', `${A}/rules`, { ...rule, name: 'error-rate-warning' })).toMatchObject({ status: 409, json: { code: 'ALERT_RULE_EXISTS', error: expect.stringMatching(/built-in/) } });
    expect(await call('POST', `${A}/rules`, { ...rule, name: 'x', operator: '~' })).toMatchObject({ status: 400, json: { code: 'ALERT_INVALID', error: expect.stringMatching(/operator/) } });
    expect(await call('POST', `${A}/rules`, { ...rule, name: 'x', severity: 'page' })).toMatchObject({ status: 400, json: { code: 'ALERT_INVALID', error: expect.stringMatching(/severity/) } });
    expect(await call('POST', `${A}/rules`)).toMatchObject({ status: 400, json: { code: 'ALERT_INVALID' } });
    const list = await call('GET', `${A}/rules`);
    expect(list.status).toBe(200);
    expect(list.json.map((r: { name: string }) => r.name)).toEqual([...BUILTIN_RULES.map((r) => r.name), 'queue-deep']);
    expect(list.json[0]).toMatchObject({ name: 'error-rate-warning', source: 'error_rate', builtin: true });
  });

  it('lists alerts by state, firing first; refuses an unknown state', async () => {
    const base = { severity: 'critical' as const, summary: 'the queue is deep', resolvedAt: null, evaluatedAt: new Date() };
    await saveAlert(s.registry.db, { ...base, rule: 'queue-deep', labels: { model: 'a' }, state: 'firing', value: 150, activeSince: new Date(1e12), firedAt: new Date(1e12 + 5_000), notified: true });
    await saveAlert(s.registry.db, { ...base, rule: 'queue-deep', labels: { model: 'b' }, state: 'pending', value: 120, activeSince: new Date(), firedAt: null, notified: false });
    await saveAlert(s.registry.db, { ...base, rule: 'queue-deep', labels: { model: 'c' }, state: 'inactive', value: 3, activeSince: null, firedAt: null, notified: false });
    const all = await call('GET', A);
    expect(all.status).toBe(200);
    expect(all.json.map((a: { labels: { model: string }; state: string }) => `${a.labels.model}:${a.state}`)).toEqual(['a:firing', 'b:pending']);
    expect(all.json[0]).toMatchObject({ rule: 'queue-deep', severity: 'critical', value: 150, fired_at: new Date(1e12 + 5_000).toISOString(), notified: true });
    expect((await call('GET', `${A}?state=firing`)).json).toHaveLength(1);
    expect((await call('GET', `${A}?state=inactive`)).json.map((a: { labels: { model: string } }) => a.labels.model)).toEqual(['c']);
    expect(await call('GET', `${A}?state=resolved`)).toEqual({ status: 200, json: [] });
    expect(await call('GET', `${A}?state=burning`)).toMatchObject({ status: 400, json: { code: 'ALERT_INVALID' } });

    const out = await cli('list');
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^state\s+severity\s+rule\s+labels\s+value\s+since\s+summary$/);
    expect(lines[1]).toMatch(/^firing\s+critical\s+queue-deep\s+model=a\s+150\s+2001-09-09T01:46:45.000Z\s+the queue is deep$/);
    expect(lines).toHaveLength(3);
  }, 30_000);

  it('creates, lists and ends silences, over HTTP and from the CLI', async () => {
    const ends = new Date(Date.now() + 3_600_000).toISOString();
    const created = await call('POST', `${A}/silences`, { matchers: [{ name: 'rule', value: 'queue-deep' }], ends_at: ends, comment: 'load test' });
    expect(created).toMatchObject({ status: 200, json: { matchers: [{ name: 'rule', value: 'queue-deep', op: '=' }], ends_at: ends, comment: 'load test', active: true, created_by: expect.any(String) } });
    expect(await call('POST', `${A}/silences`, { matchers: [{ name: 'rule', value: 'x' }], ends_at: '2000-01-01T00:00:00Z', comment: 'past' })).toMatchObject({ status: 400, json: { code: 'ALERT_INVALID', error: expect.stringMatching(/ends_at/) } });

    const out = await cli('silence', '--match', 'model=demo-logistic', '--match', 'severity!=info', '--for', '2h', '--comment', 'deploying');
    expect(out.code, out.stderr).toBe(0);
    const id = Number(/^silence (\d+): model=demo-logistic, severity!=info until /.exec(out.stdout)![1]);
    const refused = await cli('silence', '--match', 'model', '--for', '2h', '--comment', 'x');
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringMatching(/--match "model": write name=value/) });
    const local = await cli('silence', '--match', 'model!=x', '--for', '2h', '--comment', 'x');
    expect(local).toMatchObject({ code: 1, stderr: expect.stringMatching(/at least one "=" matcher \(a silence of everything.*\(ALERT_INVALID\)/) });

    const active = await call('GET', `${A}/silences?state=active`);
    expect(active.json.map((x: { id: number }) => x.id)).toEqual([created.json.id, id]);
    expect(await call('DELETE', `${A}/silences/${created.json.id}`)).toMatchObject({ status: 200, json: { id: created.json.id, active: false, expired_by: expect.any(String) } });
    expect(await call('DELETE', `${A}/silences/999999`)).toMatchObject({ status: 404, json: { code: 'ALERT_NOT_FOUND' } });
    expect(await call('DELETE', `${A}/silences/x1`)).toMatchObject({ status: 400, json: { code: 'ALERT_INVALID' } });
    expect((await call('GET', `${A}/silences?state=expired`)).json.map((x: { id: number }) => x.id)).toEqual([created.json.id]);
    expect(await call('GET', `${A}/silences?state=soon`)).toMatchObject({ status: 400, json: { code: 'ALERT_INVALID' } });

    const un = await cli('unsilence', String(id));
    expect(un.code, un.stderr).toBe(0);
    expect(un.stdout).toMatch(new RegExp(`^silence ${id}: ended`));
    const listed = await cli('silences');
    expect(listed.stdout).toMatch(new RegExp(`^${id}\\s+expired\\s+model=demo-logistic,severity!=info\\s`, 'm'));
    expect((await call('GET', `${A}/silences?state=active`)).json).toEqual([]);
  }, 30_000);

  it('creates a rule from a file and lists rules from the CLI', async () => {
    const file = path.join(dir, 'rule.json');
    writeFileSync(file, JSON.stringify({ ...rule, name: 'from-cli', for_ms: 0 }));
    const out = await cli('add-rule', '--file', file);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout.trim()).toBe('rule from-cli: critical when queue_depth > 100 for 0s');
    const rules = await cli('rules');
    expect(rules.stdout).toMatch(/^error-rate-warning \(built-in\)\s+warning\s+error_rate > 0.01\s+60s\s+-\s+more than 1% of requests fail$/m);
    expect(rules.stdout).toMatch(/^from-cli\s+critical\s+queue_depth > 100\s+0s\s+model=demo-logistic\s+the queue is deep$/m);
  }, 30_000);

  it('reads matchers and durations as the CLI takes them', () => {
    expect(parseMatcher('rule=a')).toEqual({ name: 'rule', value: 'a', op: '=' });
    expect(parseMatcher('model!=b=c')).toEqual({ name: 'model', value: 'b=c', op: '!=' });
    expect(() => parseMatcher('=a')).toThrow(/write name=value/);
    expect([parseDuration('90s'), parseDuration('30m'), parseDuration('2h'), parseDuration('1.5d')]).toEqual([90_000, 1_800_000, 7_200_000, 129_600_000]);
    expect(() => parseDuration('2 hours')).toThrow(/30m, 2h or 1d/);
  });
});
