/**
 * Alert lifecycle against a real database (PGlite, and PostgreSQL when it is there) and a real
 * webhook receiver (node:http on 127.0.0.1, port 0): a fake Signals sets the values and each
 * round runs at a time the test chooses. Pending, firing after for_ms, repeats not notified
 * again, resolved; a pending alert that clears says nothing; silences hold notices back (and a
 * firing notice goes out once a silence ends while the alert still fires); retries after the
 * receiver answers 500, none after a 404, backoff on a refused connection; evaluation does not
 * wait for the receiver; a full webhook queue drops its oldest waiting notice; another replica
 * holding the lock skips the round.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { ALERT_LOCK, AlertLoop } from '../../src/control/alerts/loop.js';
import { parseRule, type Labels } from '../../src/control/alerts/rules.js';
import { parseSilence } from '../../src/control/alerts/silences.js';
import type { Signals } from '../../src/control/alerts/signals.js';
import { alertEvents, createRule, createSilence, expireSilence, listAlerts } from '../../src/control/alerts/store.js';
import type { Notice } from '../../src/control/alerts/notice.js';
import { WebhookChannel } from '../../src/control/alerts/webhook.js';
import { describeEachDb, eventually, type TestDb } from '../helpers/services.js';

interface Received {
  text: string;
  status: 'firing' | 'resolved';
  alert: { rule: string; labels: Labels; severity: string; value: number | null };
  attachments: Array<{ fields: Array<{ title: string; value: string }> }>;
}

/** A webhook receiver: records every body; answers the queued statuses first, then 200. */
async function receiver() {
  const bodies: string[] = [];
  const statuses: number[] = [];
  let hold: Promise<void> | undefined;
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', async () => {
      await hold;
      bodies.push(body);
      expect(req.method).toBe('POST');
      expect(req.headers['content-type']).toBe('application/json');
      res.writeHead(statuses.shift() ?? 200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    statuses,
    received: (rule: string) => bodies.map((b) => JSON.parse(b) as Received).filter((b) => b.alert.rule === rule),
    /** Requests wait for `release` before they are answered. */
    holdAnswers() {
      let release!: () => void;
      hold = new Promise<void>((r) => (release = r));
      return () => {
        hold = undefined;
        release();
      };
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

describeEachDb('alert lifecycle', (backend) => {
  let t: TestDb;
  let hook: Awaited<ReturnType<typeof receiver>>;
  const values = new Map<string, number>();
  /** Values by source and model label: `source` or `source@model`. */
  const signals: Signals = { read: (source, labels) => values.get(labels.model ? `${source}@${labels.model}` : source) };
  const channels: WebhookChannel[] = [];
  const channel = (url: string, o = {}) => {
    const c = new WebhookChannel([url], { baseDelayMs: 10, maxDelayMs: 50, timeoutMs: 2_000, ...o });
    channels.push(c);
    return c;
  };
  const loopFor = (c: WebhookChannel, s: Signals = signals) => new AlertLoop({ db: t.db, signals: s, channels: [c], intervalMs: 60_000 });
  const rule = (r: Record<string, unknown>) => createRule(t.db, parseRule(r), 'test');
  const T0 = Date.now();
  const at = (ms: number) => new Date(T0 + ms);

  beforeAll(async () => {
    t = await backend.open();
    hook = await receiver();
  }, 60_000);
  // Each test starts from no rules, alerts or silences (a round evaluates every rule there is).
  beforeEach(async () => {
    await t.db.query('DELETE FROM alert_rules');
    await t.db.query('DELETE FROM alerts');
    await t.db.query('DELETE FROM silences');
    values.clear();
  });
  afterAll(async () => {
    for (const c of channels) await c.close();
    await hook?.close();
    await t?.cleanup();
  });

  it('goes pending, fires after for_ms once (repeats are not notified again), and resolves with one notice', async () => {
    await rule({ name: 'latency-high', source: 'test.latency', labels: { model: 'm' }, operator: '>', threshold: 100, for_ms: 1_000, severity: 'critical', summary: 'm is slow' });
    const c = channel(hook.url);
    const loop = loopFor(c);
    values.set('test.latency@m', 50);
    expect((await loop.tick(at(0))).transitions).toEqual([]);
    values.set('test.latency@m', 150);
    expect((await loop.tick(at(1_000))).transitions).toEqual([{ rule: 'latency-high', labels: { model: 'm' }, from: 'inactive', to: 'pending' }]);
    expect((await loop.tick(at(1_999))).transitions).toEqual([]);
    expect((await listAlerts(t.db, 'pending')).map((a) => a.rule)).toContain('latency-high');
    await c.idle();
    expect(hook.received('latency-high')).toEqual([]);

    const fired = await loop.tick(at(2_000));
    expect(fired.transitions).toEqual([{ rule: 'latency-high', labels: { model: 'm' }, from: 'pending', to: 'firing' }]);
    await c.idle();
    const [first, ...rest] = hook.received('latency-high');
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ status: 'firing', alert: { rule: 'latency-high', labels: { model: 'm' }, severity: 'critical', value: 150 } });
    expect(first!.text).toBe('[FIRING critical] latency-high {model=m}: m is slow (test.latency = 150 (> 100))');
    expect(first!.attachments[0]!.fields).toContainEqual({ title: 'model', value: 'm', short: true });

    // Repeats: still firing, one row, nothing more sent.
    values.set('test.latency@m', 170);
    for (const ms of [3_000, 4_000, 5_000]) expect((await loop.tick(at(ms))).notices).toEqual([]);
    await c.idle();
    expect(hook.received('latency-high')).toHaveLength(1);
    const firing = (await listAlerts(t.db, 'firing')).filter((a) => a.rule === 'latency-high');
    expect(firing).toMatchObject([{ value: 170, notified: true, firedAt: at(2_000), activeSince: at(1_000) }]);

    values.set('test.latency@m', 90);
    expect((await loop.tick(at(6_000))).transitions).toEqual([{ rule: 'latency-high', labels: { model: 'm' }, from: 'firing', to: 'resolved' }]);
    expect((await loop.tick(at(7_000))).notices).toEqual([]);
    await c.idle();
    const got = hook.received('latency-high');
    expect(got.map((b) => b.status)).toEqual(['firing', 'resolved']);
    expect(got[1]!.text).toBe('[RESOLVED] latency-high {model=m}: m is slow (test.latency = 90 (> 100))');
    const events = await alertEvents(t.db, 'latency-high');
    expect(events.map((e) => [e.from, e.to, e.value, e.notified, e.at.getTime()])).toEqual([
      ['inactive', 'pending', 150, false, T0 + 1_000],
      ['pending', 'firing', 150, true, T0 + 2_000],
      ['firing', 'resolved', 90, true, T0 + 6_000],
    ]);
    expect((await listAlerts(t.db, 'resolved')).map((a) => a.rule)).toContain('latency-high');
  });

  it('keeps an alert\'s state through a round whose source could not be read (no resolve, no notice)', async () => {
    await rule({ name: 'unreadable', source: 'test.flaky', operator: '>', threshold: 1, for_ms: 0, severity: 'warning' });
    const c = channel(hook.url);
    let failing = false;
    const flaky: Signals = {
      read: (source, labels) => {
        if (failing) throw new Error('I/O thread 1 ended');
        return signals.read(source, labels);
      },
    };
    const loop = loopFor(c, flaky);
    values.set('test.flaky', 5);
    expect((await loop.tick(at(0))).transitions).toEqual([{ rule: 'unreadable', labels: {}, from: 'inactive', to: 'firing' }]);
    failing = true;
    for (const ms of [1_000, 2_000]) expect(await loop.tick(at(ms))).toEqual({ skipped: false, transitions: [], notices: [] });
    expect((await listAlerts(t.db, 'firing')).filter((a) => a.rule === 'unreadable')).toMatchObject([{ value: 5, evaluatedAt: at(0) }]);
    // Readable again: it moves on what it reads.
    failing = false;
    values.set('test.flaky', 0);
    expect((await loop.tick(at(3_000))).transitions).toEqual([{ rule: 'unreadable', labels: {}, from: 'firing', to: 'resolved' }]);
    await c.idle();
    expect(hook.received('unreadable').map((b) => b.status)).toEqual(['firing', 'resolved']);
  });

  it('says nothing about a pending alert that clears, or a source with no value', async () => {
    await rule({ name: 'brief-blip', source: 'test.blip', operator: '>=', threshold: 1, for_ms: 1_000 });
    const c = channel(hook.url);
    const loop = loopFor(c);
    values.set('test.blip', 1);
    await loop.tick(at(0));
    values.set('test.blip', 0);
    expect((await loop.tick(at(500))).transitions).toEqual([{ rule: 'brief-blip', labels: {}, from: 'pending', to: 'inactive' }]);
    // No value at all reads as "does not hold" (a firing alert would resolve).
    values.set('test.blip', 5);
    await loop.tick(at(600));
    values.delete('test.blip');
    expect((await loop.tick(at(5_000))).transitions).toEqual([{ rule: 'brief-blip', labels: {}, from: 'pending', to: 'inactive' }]);
    await c.idle();
    expect(hook.received('brief-blip')).toEqual([]);
    expect((await alertEvents(t.db, 'brief-blip')).map((e) => `${e.from}->${e.to}`)).toEqual(['inactive->pending', 'pending->inactive', 'inactive->pending', 'pending->inactive']);
  });

  it('keeps an alert per label set when the Signals expands a rule over models', async () => {
    await rule({ name: 'per-model', source: 'test.per_model', operator: '>', threshold: 0.5 });
    const c = channel(hook.url);
    const loop = loopFor(c, { ...signals, expand: () => [{ model: 'a' }, { model: 'b' }] });
    values.set('test.per_model@a', 0.1);
    values.set('test.per_model@b', 0.9);
    const r = await loop.tick(at(0));
    expect(r.transitions).toEqual([{ rule: 'per-model', labels: { model: 'b' }, from: 'inactive', to: 'firing' }]);
    values.set('test.per_model@a', 0.7);
    expect((await loop.tick(at(1_000))).transitions).toEqual([{ rule: 'per-model', labels: { model: 'a' }, from: 'inactive', to: 'firing' }]);
    await c.idle();
    expect(hook.received('per-model').map((b) => b.alert.labels.model)).toEqual(['b', 'a']);
  });

  it('honours silences: state changes and is recorded, notices are held back', async () => {
    await rule({ name: 'silenced-rule', source: 'test.silenced', labels: { model: 's' }, operator: '>', threshold: 0, severity: 'emergency' });
    const c = channel(hook.url);
    const loop = loopFor(c);
    const now = new Date();
    // A silence of another model does not apply; one of this rule does.
    await createSilence(t.db, parseSilence({ matchers: [{ name: 'model', value: 'other' }], ends_at: new Date(now.getTime() + 3_600_000).toISOString(), comment: 'other model' }, now), 'test');
    const s = await createSilence(t.db, parseSilence({ matchers: [{ name: 'rule', value: 'silenced-rule' }, { name: 'severity', value: 'emergency' }], ends_at: new Date(now.getTime() + 3_600_000).toISOString(), comment: 'maintenance' }, now), 'test');
    values.set('test.silenced@s', 1);
    expect((await loop.tick(now)).transitions).toEqual([{ rule: 'silenced-rule', labels: { model: 's' }, from: 'inactive', to: 'firing' }]);
    values.set('test.silenced@s', 0);
    expect((await loop.tick(new Date(now.getTime() + 1_000))).transitions.map((x) => x.to)).toEqual(['resolved']);
    values.set('test.silenced@s', 2);
    await loop.tick(new Date(now.getTime() + 2_000));
    await c.idle();
    expect(hook.received('silenced-rule')).toEqual([]);
    const events = await alertEvents(t.db, 'silenced-rule');
    expect(events.map((e) => [e.to, e.silencedBy, e.notified])).toEqual([['firing', [s.id], false], ['resolved', [s.id], false], ['firing', [s.id], false]]);

    // The silence ends while the alert still fires: its firing notice goes out now, once.
    const later = new Date(now.getTime() + 3_000);
    await expireSilence(t.db, s.id, later, 'test');
    const r = await loop.tick(new Date(later.getTime() + 1));
    expect(r.transitions).toEqual([]);
    expect(r.notices.map((n) => n.status)).toEqual(['firing']);
    await loop.tick(new Date(later.getTime() + 1_000));
    values.set('test.silenced@s', 0);
    await loop.tick(new Date(later.getTime() + 2_000));
    await c.idle();
    expect(hook.received('silenced-rule').map((b) => b.status)).toEqual(['firing', 'resolved']);
  });

  it('retries after 500s until the receiver takes it, gives up at once on a 404, and does not hold up evaluation', async () => {
    await rule({ name: 'retried', source: 'test.retried', operator: '>', threshold: 0 });
    const c = channel(hook.url);
    const loop = loopFor(c);
    hook.statuses.push(500, 503);
    const before = hook.bodies.length;
    values.set('test.retried', 1);
    await loop.tick(at(0));
    await c.idle();
    const sent = hook.bodies.slice(before);
    expect(sent).toHaveLength(3);
    expect(new Set(sent).size).toBe(1); // the same notice each time
    expect(c.stats).toMatchObject({ attempts: 3, retries: 2, delivered: 1, failed: 0 });

    hook.statuses.push(404);
    values.set('test.retried', 0);
    await loop.tick(at(1_000));
    await c.idle();
    expect(c.stats).toMatchObject({ attempts: 4, retries: 2, delivered: 1, failed: 1 });

    // A receiver that does not answer yet: the round ends anyway, the notice arrives later.
    const release = hook.holdAnswers();
    values.set('test.retried', 1);
    const r = await loop.tick(at(2_000));
    expect(r.notices.map((n) => n.status)).toEqual(['firing']);
    expect(c.stats.delivered).toBe(1);
    release();
    await c.idle();
    expect(c.stats.delivered).toBe(2);
  });

  it('backs off and gives up after maxAttempts when nothing listens', async () => {
    const closed = await receiver();
    const url = closed.url;
    await closed.close();
    await rule({ name: 'unheard', source: 'test.unheard', operator: '>', threshold: 0 });
    const c = channel(url, { maxAttempts: 3 });
    values.set('test.unheard', 1);
    await loopFor(c).tick(at(0));
    await c.idle();
    expect(c.stats).toMatchObject({ attempts: 3, retries: 2, delivered: 0, failed: 1 });
  });

  it('bounds each webhook queue: a full one drops its oldest waiting notice, never the one in flight', async () => {
    const c = channel(hook.url, { queueLimit: 2 });
    const notice = (rule: string): Notice => ({
      status: 'firing', rule, labels: {}, severity: 'info', summary: 's', source: 'x', operator: '>', threshold: 0, value: 1,
      activeSince: null, firedAt: null, resolvedAt: null, at: new Date(),
    });
    const release = hook.holdAnswers();
    for (const r of ['q1', 'q2', 'q3', 'q4']) c.send(notice(r));
    release();
    await c.idle();
    expect(['q1', 'q2', 'q3', 'q4'].map((r) => hook.received(r).length)).toEqual([1, 0, 1, 1]);
    expect(c.stats).toMatchObject({ delivered: 3, dropped: 1 });
  });

  it('evaluates on its own every interval once started, and stops when closed', async () => {
    await rule({ name: 'timed', source: 'test.timed', operator: '>', threshold: 0 });
    const c = channel(hook.url);
    const loop = new AlertLoop({ db: t.db, signals, channels: [c], intervalMs: 20 });
    values.set('test.timed', 1);
    loop.start();
    await eventually(() => (hook.received('timed').length > 0 ? true : undefined), 10_000, 'the firing notice');
    await loop.close();
    values.set('test.timed', 0);
    await new Promise((r) => setTimeout(r, 100)); // several intervals: a loop still running would resolve it
    expect((await listAlerts(t.db, 'firing')).map((a) => a.rule)).toEqual(['timed']);
    await c.idle();
    expect(hook.received('timed').map((b) => b.status)).toEqual(['firing']);
  });

  it('skips the round while another replica holds the alerts lock (PostgreSQL)', async () => {
    if (!t.connect) return; // one connection on PGlite: nobody else can hold it
    await rule({ name: 'locked-out', source: 'test.locked', operator: '>', threshold: 0 });
    values.set('test.locked', 1);
    const other = await t.connect();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = other.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1::int, 0)', [ALERT_LOCK]);
      locked();
      await held;
    });
    await isLocked;
    const c = channel(hook.url);
    expect(await loopFor(c).tick(at(0))).toEqual({ skipped: true, transitions: [], notices: [] });
    release();
    await holder;
    expect((await loopFor(c).tick(at(1))).transitions).toEqual([{ rule: 'locked-out', labels: {}, from: 'inactive', to: 'firing' }]);
  });
});
