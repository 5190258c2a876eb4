/**
 * The decision log on PGlite and PostgreSQL: group commit (one INSERT per batch, by size or by
 * time), idempotent rows, `pending` until committed, a bounded buffer that drops (counted)
 * instead of blocking, buffering and retrying while the database is unreachable, features
 * stored exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { eventIdTime, isValidEventId, newEventId } from '../../src/learn/event-id.js';
import { DECISION_COLUMNS, rowToDecision, type DecisionRow } from '../../src/learn/decision.js';
import { describeEachDb, eventually, type TestDb } from '../helpers/services.js';
import { decision, sleep, switchable } from './helpers.js';

describe('event ids', () => {
  it('are UUIDv7s that carry their time and sort by it', () => {
    const before = Date.now();
    const a = newEventId();
    const b = newEventId();
    const t = eventIdTime(a)!;
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
    expect(a < b).toBe(true);
    expect(eventIdTime('client-id-1')).toBeUndefined();
    expect(eventIdTime('01a2343b-69e4-462f-aa41-101ddd45a407')).toBeUndefined(); // a v4
  });

  it('accepts client ids of 1 to 128 characters without control characters', () => {
    expect(isValidEventId('x')).toBe(true);
    expect(isValidEventId('é'.repeat(128))).toBe(true);
    expect(isValidEventId('')).toBe(false);
    expect(isValidEventId('x'.repeat(129))).toBe(false);
    expect(isValidEventId('a\u0000b')).toBe(false);
    expect(isValidEventId(12)).toBe(false);
  });
});

describeEachDb('decision log', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await backend.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const read = async (ids: string[]) => {
    const rows = await t.db.query<DecisionRow & Record<string, unknown>>(`SELECT ${DECISION_COLUMNS} FROM all_decisions WHERE event_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))`, [JSON.stringify(ids)]);
    return rows.map(rowToDecision);
  };

  it('writes one INSERT per full batch, and a partial batch after flushMs', async () => {
    const s = switchable(t.db);
    const dl = new DecisionLog(s.db, { capacity: 1000, batchSize: 10, flushMs: 500 });
    const ds = Array.from({ length: 25 }, (_, i) => decision({ unitId: `u${i}` }));
    for (const d of ds) expect(dl.offer(d)).toBe(true);
    await eventually(() => (dl.stats.logged === 20 ? true : undefined), 5000, 'two full batches');
    expect(s.inserts.length).toBe(2);
    // The last 5 wait for the timer, and are found meanwhile.
    expect(dl.stats.pending).toBe(5);
    expect(dl.pending(ds[24]!.eventId)).toBe(ds[24]);
    await eventually(() => (dl.stats.logged === 25 ? true : undefined), 5000, 'the timed batch');
    expect(s.inserts.length).toBe(3);
    expect(dl.pending(ds[24]!.eventId)).toBeUndefined();
    const back = await read(ds.map((d) => d.eventId));
    expect(back).toHaveLength(25);
    const byId = new Map(back.map((d) => [d.eventId, d]));
    for (const d of ds) expect(byId.get(d.eventId)).toEqual(d);
    await dl.close();
  });

  it('stores features exactly (float32) and the same event id once', async () => {
    const dl = new DecisionLog(t.db, { capacity: 100, batchSize: 100, flushMs: 10 });
    const f = Float32Array.from({ length: 100 }, (_, i) => Math.fround(Math.sin(i) * 1e3) / 7);
    const d = decision({ features: f, propensity: 1 / 3, routeGen: 2 ** 40 });
    const original = Array.from(f);
    dl.offer(d);
    f.fill(0); // the caller's buffer is reused (a pooled request body): the log kept a copy
    dl.offer({ ...d, variant: 'other' }); // same id: the first row stays
    await dl.flush();
    dl.offer({ ...d, variant: 'third' });
    await dl.close();
    const [back] = await read([d.eventId]);
    expect(back!.variant).toBe('a');
    expect(Array.from(back!.features!)).toEqual(original);
    expect(back!.propensity).toBe(1 / 3);
    expect(back!.routeGen).toBe(2 ** 40);
  });

  it('refuses decisions the database would refuse, without throwing', async () => {
    const dl = new DecisionLog(t.db, { capacity: 100, batchSize: 100, flushMs: 10 });
    expect(dl.offer(decision({ propensity: 0 }))).toBe(false);
    expect(dl.offer(decision({ propensity: 1.5 }))).toBe(false);
    expect(dl.offer(decision({ eventId: '' }))).toBe(false);
    expect(dl.offer(decision({ unitId: 'a\u0000' }))).toBe(false);
    expect(dl.offer(null as never)).toBe(false);
    expect(dl.stats.invalid).toBe(4);
    expect(dl.offerMany([decision(), decision({ propensity: -1 }), decision()])).toBe(2);
    await dl.close();
    expect(dl.offer(decision())).toBe(false); // closed
  });

  it('keeps buffering while the database is unreachable, drops (counted) beyond capacity, and writes it all on recovery', async () => {
    const s = switchable(t.db);
    const dl = new DecisionLog(s.db, { capacity: 50, batchSize: 20, flushMs: 20, retryMinMs: 20, retryMaxMs: 100 });
    s.down();
    const kept = Array.from({ length: 50 }, () => decision());
    for (const d of kept) expect(dl.offer(d)).toBe(true);
    const t0 = performance.now();
    for (let i = 0; i < 30; i++) expect(dl.offer(decision())).toBe(false);
    expect(performance.now() - t0).toBeLessThan(100); // never blocks
    await sleep(200);
    expect(dl.stats.failedBatches).toBeGreaterThan(0);
    expect(dl.stats).toMatchObject({ logged: 0, dropped: 30, pending: 50 });
    expect(dl.pending(kept[0]!.eventId)).toBe(kept[0]);
    s.up();
    await eventually(() => (dl.stats.logged === 50 ? true : undefined), 5000, 'the buffered decisions');
    expect(await read(kept.map((d) => d.eventId))).toHaveLength(50);
    const lines = dl.metricLines().join('\n');
    expect(lines).toContain('sluice_decisions_logged_total{model="m",variant="a",version="1"} 50');
    expect(lines).toContain('sluice_decisions_dropped_total{model="m",variant="a",version="1"} 30');
    expect(lines).toContain('sluice_decisions_pending 0');
    await dl.close();
  });

  it('close writes what is buffered', async () => {
    const dl = new DecisionLog(t.db, { capacity: 100, batchSize: 100, flushMs: 60_000 });
    const ds = Array.from({ length: 7 }, () => decision());
    for (const d of ds) dl.offer(d);
    await dl.close();
    expect(await read(ds.map((d) => d.eventId))).toHaveLength(7);
  });
});
