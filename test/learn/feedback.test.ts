/**
 * Feedback intake on PGlite and PostgreSQL: parsing, group commit (one transaction per batch),
 * idempotency (repeats and concurrent repeats are applied once), every refusal code, the join
 * with the decision (buffered or committed) offered to subscribers, and the local log while
 * the database is unreachable: fsynced before the answer, replayed once it is back (and after
 * a restart) with nothing lost and nothing twice.
 */
import { appendFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { newEventId } from '../../src/learn/event-id.js';
import { FeedbackIntake, FeedbackItemError, parseFeedback, type FeedbackInput, type FeedbackOutcome, type JoinedFeedback } from '../../src/learn/feedback.js';
import type { Db } from '../../src/registry/db.js';
import { describeEachDb, eventually, tempDir, type TestDb } from '../helpers/services.js';
import { decision, switchable } from './helpers.js';

const DAY = 24 * 3_600_000;

describe('parseFeedback', () => {
  it('reads one event or a batch, with per-item errors', () => {
    expect(parseFeedback({ event_id: 'e1', reward: 1 }, 10)).toEqual([{ eventId: 'e1', reward: 1 }]);
    expect(parseFeedback({ event_id: 'e1', reward: -0.5, unit_id: 'u', at: 1700000000000 }, 10)).toEqual([{ eventId: 'e1', reward: -0.5, unitId: 'u', at: 1700000000000 }]);
    const out = parseFeedback({ events: [{ event_id: 'a', reward: 1 }, { event_id: 'b', reward: '1' }, { reward: 1 }, { event_id: 'c', reward: 1, rewrd: 2 }, 5, { event_id: 'd', reward: 1, at: 1.5 }] }, 10);
    expect(out[0]).toEqual({ eventId: 'a', reward: 1 });
    for (const i of [1, 2, 3, 4, 5]) {
      expect(out[i]).toBeInstanceOf(FeedbackItemError);
      expect((out[i] as SluiceError).code).toBe('FEEDBACK_INVALID');
    }
    expect((out[1] as FeedbackItemError).eventId).toBe('b');
    expect((out[2] as FeedbackItemError).eventId).toBeNull();
  });

  it('refuses non-finite and non-numeric rewards', () => {
    for (const reward of [Infinity, -Infinity, NaN, '3', null, true, undefined, [1]]) {
      const [r] = parseFeedback({ event_id: 'e', reward }, 10);
      expect((r as SluiceError).code, String(reward)).toBe('FEEDBACK_INVALID');
    }
    // JSON has no NaN or Infinity, but a number too large for a double parses as Infinity.
    const [big] = parseFeedback(JSON.parse('{"event_id":"e","reward":1e999}'), 10);
    expect((big as SluiceError).code).toBe('FEEDBACK_INVALID');
  });

  it('throws whole-body errors', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as SluiceError).code;
      }
      return 'no error';
    };
    expect(code(() => parseFeedback([1], 10))).toBe('FEEDBACK_INVALID');
    expect(code(() => parseFeedback('x', 10))).toBe('FEEDBACK_INVALID');
    expect(code(() => parseFeedback({ events: [] }, 10))).toBe('FEEDBACK_INVALID');
    expect(code(() => parseFeedback({ events: {} }, 10))).toBe('FEEDBACK_INVALID');
    expect(code(() => parseFeedback({ events: Array.from({ length: 11 }, (_, i) => ({ event_id: `e${i}`, reward: 1 })) }, 10))).toBe('FEEDBACK_BATCH_TOO_LARGE');
  });
});

const status = (o: FeedbackOutcome) => ('status' in o ? o.status : o.error.code);

describeEachDb('feedback intake', (backend) => {
  let t: TestDb;
  const open: Array<{ close(): Promise<void> }> = [];
  const cleanups: Array<() => Promise<void>> = [];
  beforeAll(async () => {
    t = await backend.open();
  });
  afterAll(async () => {
    for (const o of open.reverse()) await o.close();
    for (const c of cleanups) await c();
    await t?.cleanup();
  });

  async function setup(db: Db = t.db, over: Partial<ConstructorParameters<typeof FeedbackIntake>[0]> = {}) {
    const dir = await tempDir('sluice-feedback-');
    cleanups.push(dir.cleanup);
    const decisions = new DecisionLog(db, { capacity: 10_000, batchSize: 500, flushMs: 5 });
    const intake = new FeedbackIntake({ db, dataDir: dir.dir, decisions, joinWindowMs: DAY, batchSize: 100, flushMs: 2, probeMinMs: 20, probeMaxMs: 100, ...over });
    await intake.start();
    open.push(decisions, intake);
    return { intake, decisions, dir: dir.dir };
  }

  async function logged(decisions: DecisionLog, n: number, over = {}) {
    const ds = Array.from({ length: n }, () => decision(over));
    for (const d of ds) decisions.offer(d);
    await decisions.flush();
    return ds;
  }

  const stored = async (ids: string[]) => t.db.query<{ event_id: string; reward: number; joined: boolean; variant: string | null; propensity: number | null; via_local_log: boolean }>(
    'SELECT event_id, reward, joined, variant, propensity, via_local_log FROM feedback_events WHERE event_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))', [JSON.stringify(ids)]);

  it('accepts feedback joined to its decision, stores it once, and offers it to subscribers', async () => {
    const { intake, decisions } = await setup();
    const seen: JoinedFeedback[] = [];
    intake.subscribe((f) => seen.push(f));
    const features = Float32Array.from([0.25, -1, 3.5]);
    const [d] = await logged(decisions, 1, { features, variant: 'b', version: '2', propensity: 0.1 });
    const out = await intake.submit([{ eventId: d!.eventId, reward: 2.5, unitId: 'u1' }]);
    expect(out).toEqual([{ event_id: d!.eventId, status: 'accepted' }]);
    expect(await intake.submit([{ eventId: d!.eventId, reward: 9 }])).toEqual([{ event_id: d!.eventId, status: 'duplicate' }]);
    const rows = await stored([d!.eventId]);
    expect(rows).toEqual([{ event_id: d!.eventId, reward: 2.5, joined: true, variant: 'b', propensity: 0.1, via_local_log: false }]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.reward).toBe(2.5);
    expect(seen[0]!.decision).toMatchObject({ eventId: d!.eventId, variant: 'b', version: '2', propensity: 0.1 });
    expect(Array.from(seen[0]!.decision.features!)).toEqual([0.25, -1, 3.5]);
    expect(intake.stats).toMatchObject({ accepted: 1, duplicate: 1 });
  });

  it('joins a decision still in the buffer (not yet committed)', async () => {
    const s = switchable(t.db);
    const decisions = new DecisionLog(s.db, { capacity: 100, batchSize: 100, flushMs: 60_000 });
    open.push(decisions);
    const { intake } = await setup(t.db, { decisions });
    const d = decision({ variant: 'early' });
    decisions.offer(d);
    expect(await intake.submit([{ eventId: d.eventId, reward: 1 }])).toEqual([{ event_id: d.eventId, status: 'accepted' }]);
    expect((await stored([d.eventId]))[0]).toMatchObject({ joined: true, variant: 'early' });
  });

  it('group-commits: 300 concurrent events in a few transactions, each answered after its commit', async () => {
    const s = switchable(t.db);
    const { intake, decisions } = await setup(s.db);
    const ds = await logged(decisions, 300);
    const before = s.transactions;
    const outs = await Promise.all(ds.map((d, i) => intake.submit([{ eventId: d.eventId, reward: i }])));
    expect(outs.flat().map(status)).toEqual(ds.map(() => 'accepted'));
    const txs = s.transactions - before;
    expect(txs).toBeGreaterThanOrEqual(3); // batchSize 100
    expect(txs).toBeLessThanOrEqual(10);
    expect(await stored(ds.map((d) => d.eventId))).toHaveLength(300);
  });

  it('applies concurrent repeats once: one accepted, the rest duplicate', async () => {
    const { intake, decisions } = await setup();
    const ds = await logged(decisions, 20);
    const calls: Array<Promise<FeedbackOutcome[]>> = [];
    for (let k = 0; k < 5; k++) for (const d of ds) calls.push(intake.submit([{ eventId: d.eventId, reward: k }]));
    // and repeats inside one call
    calls.push(intake.submit(ds.map((d) => ({ eventId: d.eventId, reward: 7 }))));
    const outs = (await Promise.all(calls)).flat();
    for (const d of ds) {
      const mine = outs.filter((o) => o.event_id === d.eventId).map(status);
      expect(mine.filter((x) => x === 'accepted')).toHaveLength(1);
      expect(mine.filter((x) => x === 'duplicate')).toHaveLength(5);
    }
    expect(await stored(ds.map((d) => d.eventId))).toHaveLength(20);
  });

  /** The database, counting transactions in flight at once (the most seen in `most`). */
  function overlapping(db: Db): { db: Db; most: number } {
    const o = { db: undefined as unknown as Db, most: 0 };
    let now = 0;
    o.db = {
      kind: db.kind,
      query: (sql, params) => db.query(sql, params),
      exec: (sql) => db.exec(sql),
      async transaction(fn) {
        o.most = Math.max(o.most, ++now);
        try {
          return await db.transaction(fn);
        } finally {
          now--;
        }
      },
      listen: (c, h) => db.listen(c, h),
      close: () => db.close(),
    };
    return o;
  }

  it('runs two batches at once: an event in both is stored by one and a duplicate in the other', async () => {
    const o = overlapping(t.db);
    const { intake, decisions } = await setup(o.db, { batchSize: 10, concurrency: 2 });
    const ds = await logged(decisions, 200);
    // Queued as [ids 0-9], [ids 0-9 again], [ids 10-19], [10-19 again], ...: a batch and its
    // repeat are taken by the two loops side by side.
    const calls: Array<Promise<FeedbackOutcome[]>> = [];
    for (let i = 0; i < 200; i += 10) for (let k = 0; k < 2; k++) for (const d of ds.slice(i, i + 10)) calls.push(intake.submit([{ eventId: d.eventId, reward: k }]));
    const outs = (await Promise.all(calls)).flat();
    expect(o.most).toBe(2);
    for (const d of ds) {
      expect(outs.filter((x) => x.event_id === d.eventId).map(status).sort()).toEqual(['accepted', 'duplicate']);
    }
    expect(await stored(ds.map((d) => d.eventId))).toHaveLength(200);
    expect(intake.stats).toMatchObject({ accepted: 200, duplicate: 200 });
  });

  it('runs local-log batches one after another: an event in two batches at once is accepted once', async () => {
    const s = switchable(t.db);
    const { intake } = await setup(s.db, { batchSize: 10, concurrency: 2 });
    s.down();
    const ids = Array.from({ length: 100 }, (_, i) => `local-pair-${i}-${newEventId()}`);
    const calls: Array<Promise<FeedbackOutcome[]>> = [];
    for (let i = 0; i < 100; i += 10) for (let k = 0; k < 2; k++) for (const id of ids.slice(i, i + 10)) calls.push(intake.submit([{ eventId: id, reward: k }]));
    const outs = (await Promise.all(calls)).flat();
    for (const id of ids) expect(outs.filter((x) => x.event_id === id).map(status).sort()).toEqual(['accepted', 'duplicate']);
    s.up();
    await eventually(() => (intake.stats.localMode || intake.stats.replayPending > 0 ? undefined : true), 10_000, 'replayed');
    expect(await stored(ids)).toHaveLength(100);
    expect(intake.stats.replayDuplicates).toBe(0);
  });

  it('refuses with EVENT_NOT_FOUND, FEEDBACK_TOO_LATE and FEEDBACK_INVALID, storing nothing', async () => {
    const { intake, decisions } = await setup(t.db, { notFoundGraceMs: 0 });
    const [old] = await logged(decisions, 1, { at: Date.now() - 2 * DAY });
    const [fresh] = await logged(decisions, 1);
    const unknown = newEventId();
    const out = await intake.submit([
      { eventId: unknown, reward: 1 },
      { eventId: 'client-made-unknown', reward: 1 },
      { eventId: old!.eventId, reward: 1 },
      // `at` is the outcome's time: within the window of the old decision
      { eventId: fresh!.eventId, reward: 1, at: Date.now() + 2 * DAY },
      { eventId: 'x', reward: Number.NaN },
      { eventId: '', reward: 1 },
    ]);
    expect(out.map(status)).toEqual(['EVENT_NOT_FOUND', 'EVENT_NOT_FOUND', 'FEEDBACK_TOO_LATE', 'FEEDBACK_TOO_LATE', 'FEEDBACK_INVALID', 'FEEDBACK_INVALID']);
    expect(await stored([unknown, old!.eventId, fresh!.eventId])).toEqual([]);
    expect(intake.stats.refused).toEqual({ EVENT_NOT_FOUND: 2, FEEDBACK_TOO_LATE: 2, FEEDBACK_INVALID: 2 });
    expect(intake.metricLines().join('\n')).toContain('sluice_feedback_refused_total{code="EVENT_NOT_FOUND"} 2');
  });

  it('looks a young unknown UUIDv7 up again: its decision may still be on its way', async () => {
    const s = switchable(t.db);
    const slow = new DecisionLog(s.db, { capacity: 100, batchSize: 100, flushMs: 60_000 });
    open.push(slow);
    const { intake } = await setup(t.db, { notFoundGraceMs: 3_000 });
    const d = decision();
    // Logged by a log the intake does not see (another I/O thread's), 300 ms later.
    const answer = intake.submit([{ eventId: d.eventId, reward: 1 }]);
    setTimeout(() => {
      slow.offer(d);
      void slow.flush();
    }, 300);
    expect((await answer).map(status)).toEqual(['accepted']);
  });

  it('while the database is unreachable: fsyncs to the local log before answering, refuses late UUIDv7s, and replays once it is back', async () => {
    const s = switchable(t.db);
    const { intake, decisions, dir } = await setup(s.db);
    const seen: JoinedFeedback[] = [];
    intake.subscribe((f) => seen.push(f));
    const ds = await logged(decisions, 50);
    const before = await intake.submit([{ eventId: ds[0]!.eventId, reward: 1 }]);
    expect(before.map(status)).toEqual(['accepted']);
    s.down();
    const late = decision({ eventId: newEventId() });
    const outs = await intake.submit([
      ...ds.map((d, i) => ({ eventId: d.eventId, reward: i })),
      { eventId: 'client-made-1', reward: 5 },
      { eventId: ds[1]!.eventId, reward: 1 }, // repeat inside the batch
      { eventId: late.eventId, reward: 1, at: Date.now() + 2 * DAY },
    ]);
    // ds[0] was stored before the outage: it cannot be checked now, so it is accepted again (and applied once).
    expect(outs.map(status)).toEqual([...ds.map(() => 'accepted'), 'accepted', 'duplicate', 'FEEDBACK_TOO_LATE']);
    expect(intake.stats.localMode).toBe(true);
    expect(intake.stats.replayPending).toBe(51);
    expect(intake.stats.localLogBytes).toBeGreaterThan(0);
    expect((await readdir(path.join(dir, 'feedback'))).length).toBe(1);
    // A repeat while down: duplicate, from the log.
    expect((await intake.submit([{ eventId: ds[5]!.eventId, reward: 0 }])).map(status)).toEqual(['duplicate']);
    expect(await stored(ds.slice(1).map((d) => d.eventId))).toEqual([]);
    s.up();
    await eventually(() => (intake.stats.replayPending === 0 && intake.stats.localLogBytes === 0 && !intake.stats.localMode ? true : undefined), 10_000, 'the replay');
    const rows = await stored([...ds.map((d) => d.eventId), 'client-made-1']);
    expect(rows).toHaveLength(51);
    expect(rows.find((r) => r.event_id === 'client-made-1')).toMatchObject({ joined: false, via_local_log: true });
    expect(rows.find((r) => r.event_id === ds[3]!.eventId)).toMatchObject({ joined: true, reward: 3, via_local_log: true });
    expect(intake.stats).toMatchObject({ replayed: 51, replayDuplicates: 1, unjoined: 1, localLogBytes: 0 });
    expect(await readdir(path.join(dir, 'feedback'))).toEqual([]);
    // Subscribers got each stored, joined event once.
    expect(seen.map((f) => f.eventId).sort()).toEqual(ds.map((d) => d.eventId).sort());
    // Back to the database: a repeat is a duplicate.
    expect((await intake.submit([{ eventId: 'client-made-1', reward: 0 }])).map(status)).toEqual(['duplicate']);
  });

  it('replays what a stopped process left in its local log at the next start, skipping a torn last line', async () => {
    const s = switchable(t.db);
    const dir = await tempDir('sluice-feedback-restart-');
    cleanups.push(dir.cleanup);
    const decisions = new DecisionLog(s.db, { capacity: 100, batchSize: 100, flushMs: 5 });
    const first = new FeedbackIntake({ db: s.db, dataDir: dir.dir, decisions, joinWindowMs: DAY, batchSize: 100, flushMs: 2 });
    await first.start();
    s.down();
    const ids = Array.from({ length: 30 }, (_, i) => `restart-${i}-${newEventId()}`);
    const outs = await Promise.all(ids.map((id) => first.submit([{ eventId: id, reward: 1 }])));
    expect(outs.flat().map(status)).toEqual(ids.map(() => 'accepted'));
    await first.close(); // the database is still down: nothing replayed
    await decisions.close();
    const files = await readdir(path.join(dir.dir, 'feedback'));
    expect(files).toHaveLength(1);
    // A write torn by a crash: never acknowledged, skipped.
    await appendFile(path.join(dir.dir, 'feedback', files[0]!), '{"e":"torn","r":1,"a":1');
    s.up();
    const decisions2 = new DecisionLog(t.db, { capacity: 100, batchSize: 100, flushMs: 5 });
    const second = new FeedbackIntake({ db: t.db, dataDir: dir.dir, decisions: decisions2, joinWindowMs: DAY, batchSize: 100, flushMs: 2 });
    open.push(decisions2, second);
    await second.start();
    expect(second.stats).toMatchObject({ replayed: 30, replayPending: 0, corruptRecords: 1, unjoined: 30 });
    expect(await stored(ids)).toHaveLength(30);
    expect(await readdir(path.join(dir.dir, 'feedback'))).toEqual([]);
    // And a third start finds nothing to do.
    expect((await second.submit([{ eventId: ids[0]!, reward: 1 }])).map(status)).toEqual(['duplicate']);
  });

  it('answers SHUTTING_DOWN after close', async () => {
    const { intake } = await setup();
    await intake.close();
    expect((await intake.submit([{ eventId: 'e', reward: 1 }])).map(status)).toEqual(['SHUTTING_DOWN']);
  });
});

export type { FeedbackInput };
