/**
 * Decision chunks (src/learn/decision-chunk.ts): what a thread's builder encodes is read back
 * exactly (objects for listeners, one row for early feedback), whatever the unit id holds;
 * counts and time range are right; the decision log finds a chunk's decision by event id until
 * it is written, on PGlite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chunkOf, DecisionChunkBuilder, decisionsOf, findRow, rowMiddle } from '../../src/learn/decision-chunk.js';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { lookUp, rowDecision } from '../../src/learn/feedback-store.js';
import { eventIdTime, lastEventIdMs, newEventId } from '../../src/learn/event-id.js';
import { DECISION_COLUMNS, rowToDecision, type Decision, type DecisionRow } from '../../src/learn/decision.js';
import { describeEachDb, eventually, type TestDb } from '../helpers/services.js';

function build(ds: Decision[]) {
  const b = new DecisionChunkBuilder();
  const middles = new Map<string, string>();
  for (const d of ds) {
    const key = `${d.variant}/${d.version}`;
    if (!middles.has(key)) middles.set(key, rowMiddle(d.model, d.variant, d.version, d.routeGen));
    b.add(d.eventId, d.at, middles.get(key)!, d.model, d.variant, d.version, d.unitId, d.propensity, d.features as Float32Array | undefined);
  }
  return b;
}

function decisionNow(over: Partial<Decision> = {}): Decision {
  const eventId = newEventId();
  return { eventId, at: lastEventIdMs(), model: 'm', variant: 'a', version: '1', propensity: 0.9, routeGen: 7, ...over };
}

describe('decision chunks', () => {
  it('read back exactly: odd unit ids, features with NaN and infinities, empty features, no unit', () => {
    const ds = [
      decisionNow({ unitId: 'quote " backslash \\ brace },{"e":"x' }),
      decisionNow({ unitId: 'émoji 🙂', variant: 'b', version: '2.0.0', propensity: 0.1 }),
      decisionNow({ features: new Float32Array([0.1, -3.5, NaN, Infinity, -Infinity, 1e-45]) }),
      decisionNow({ features: new Float32Array(0) }),
      decisionNow(),
    ];
    const chunk = build(ds).take()!;
    expect(chunk.n).toBe(5);
    const back = decisionsOf(chunk);
    expect(back).toEqual(ds);
    for (const d of ds) expect(findRow(chunk, d.eventId)).toEqual(d);
    expect(findRow(chunk, newEventId())).toBeUndefined();
    // chunkOf (one decision offered on its own) writes the same form.
    for (const d of ds) expect(decisionsOf(chunkOf(d))).toEqual([d]);
    for (const d of ds) expect(chunkOf(d).rows).toBe(build([d]).take()!.rows);
  });

  it('copies features at once: a view into a buffer reused afterwards keeps the values it had', () => {
    const buffer = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new DecisionChunkBuilder();
    const ds = [decisionNow(), decisionNow()];
    ds.forEach((d, i) => b.add(d.eventId, d.at, rowMiddle('m', 'a', '1', 7), 'm', 'a', '1', undefined, 0.9, buffer.subarray(i * 3, i * 3 + 3)));
    buffer.fill(-1);
    expect(decisionsOf(b.take()!).map((d) => [...d.features!])).toEqual([[1, 2, 3], [4, 5, 6]]);
  });

  it('counts per variant and spans the decisions\' times; a builder starts afresh after take', () => {
    const b = build([decisionNow({ at: 1000 }), decisionNow({ variant: 'b', version: '2', at: 900 }), decisionNow({ at: 1100 })]);
    expect(b.n).toBe(3);
    const c = b.take()!;
    // The span covers the rows' times and the times their ids carry (now, here).
    expect(c.minMs).toBe(900);
    expect(c.maxMs).toBe(lastEventIdMs());
    expect(c.counts.sort()).toEqual([['m', 'a', '1', 2], ['m', 'b', '2', 1]]);
    expect(b.n).toBe(0);
    expect(b.take()).toBeUndefined();
  });

  it('event ids stay time-ordered and carry the time lastEventIdMs reports', () => {
    let prev = '';
    for (let i = 0; i < 5000; i++) {
      const id = newEventId();
      expect(eventIdTime(id)).toBe(lastEventIdMs());
      expect(id > prev).toBe(true);
      prev = id;
    }
  });
});

describeEachDb('decision log with chunks', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await backend.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('finds a chunk\'s decisions until written, then the database has them exactly once', async () => {
    const dl = new DecisionLog(t.db, { capacity: 1000, batchSize: 100, flushMs: 60_000 });
    const ds = Array.from({ length: 30 }, (_, i) => decisionNow({ unitId: `u${i}`, features: new Float32Array([i, i / 3]) }));
    const c1 = build(ds.slice(0, 20)).take()!;
    const c2 = build(ds.slice(20)).take()!;
    expect(dl.offerChunk(c1)).toBe(true);
    expect(dl.offerChunk(c1)).toBe(true); // a repeat (a retried hand-off) stores nothing twice
    expect(dl.offerChunk(c2)).toBe(true);
    expect(dl.pending(ds[25]!.eventId)).toEqual(ds[25]);
    expect(dl.pending(newEventId())).toBeUndefined();
    await dl.flush();
    expect(dl.pending(ds[25]!.eventId)).toBeUndefined();
    // Written, and still in memory for feedback (DecisionLog.find), without a lookup.
    expect(dl.find(ds[25]!.eventId)).toEqual(ds[25]);
    const rows = await t.db.query<{ n: number; feats: number }>(
      'SELECT count(*)::int AS n, count(context)::int AS feats FROM all_decisions WHERE event_id = ANY($1::text[]) AND octet_length(context) = 8', [ds.map((d) => d.eventId)]);
    expect(rows[0]).toEqual({ n: 30, feats: 30 });
    // Stored as the two chunks they came in (one row each), the repeat once (its key).
    const chunks = await t.db.query<{ n: number }>('SELECT n FROM decision_chunks WHERE key = ANY($1::text[]) ORDER BY n', [[ds[0]!.eventId, ds[20]!.eventId]]);
    expect(chunks.map((c) => c.n)).toEqual([10, 20]);
    // The context reads back exactly (float32 bytes, migration 006).
    const back = await t.db.query<DecisionRow & Record<string, unknown>>(`SELECT ${DECISION_COLUMNS} FROM all_decisions WHERE event_id = $1`, [ds[7]!.eventId]);
    expect([...rowToDecision(back[0]!).features!]).toEqual([7, Math.fround(7 / 3)]);
    expect(dl.stats.logged).toBe(50);
    await dl.close();
  });

  it('stores each row\'s context with its own row, across chunks mixing rows with and without one', async () => {
    const dl = new DecisionLog(t.db, { capacity: 1000, batchSize: 1000, flushMs: 60_000 });
    const features = (i: number): Float32Array | undefined =>
      i % 4 === 0 ? undefined : i % 4 === 1 ? new Float32Array([i, NaN, -Infinity, 1e-45]) : i % 4 === 2 ? new Float32Array(0) : new Float32Array(Array.from({ length: 100 }, (_, k) => i * 1000 + k));
    // Unit ids beyond ASCII, with quotes and a row separator inside, are escaped so that row offsets stay byte offsets.
    const unit = (i: number) => (i % 5 === 0 ? `émoji 🙂 "q" },{"e":"x ${i}` : `mix${i}`);
    const ds = Array.from({ length: 41 }, (_, i) => decisionNow({ unitId: unit(i), features: features(i) }));
    // Three chunks of odd sizes and one decision offered on its own, written as one batch.
    for (const part of [ds.slice(0, 7), ds.slice(7, 8), ds.slice(8, 40)]) expect(dl.offerChunk(build(part).take()!)).toBe(true);
    expect(dl.offer(ds[40]!)).toBe(true);
    await dl.flush();
    const rows = await t.db.query<DecisionRow & Record<string, unknown>>(`SELECT ${DECISION_COLUMNS} FROM all_decisions WHERE event_id = ANY($1::text[])`, [ds.map((d) => d.eventId)]);
    expect(rows.length).toBe(41);
    const byId = new Map(rows.map((r) => [rowToDecision(r).eventId, rowToDecision(r)]));
    const same = (got: Decision | undefined, d: Decision) => {
      expect(got).toBeDefined();
      expect(got!.unitId).toBe(d.unitId);
      expect(got!.at).toBe(d.at);
      if (d.features === undefined) expect(got!.features).toBeUndefined();
      else expect([...got!.features!]).toEqual([...d.features]);
    };
    for (const d of ds) same(byId.get(d.eventId), d);
    // Feedback's lookup finds each one by id (a chunk's first, middle and last rows, the chunk of
    // one, the single decision), with its context read alone from the chunk's bytes.
    const found = await t.db.transaction((tx) => lookUp(tx, [...ds.map((d) => d.eventId), newEventId(), 'client-id-never-logged']));
    for (const d of ds) same(rowDecision(found.get(d.eventId)!, d.eventId), d);
    expect(found.get(ds[3]!.eventId)!.propensity).toBe(0.9);
    expect(rowDecision(found.get(ds[3]!.eventId)!, ds[3]!.eventId)).toMatchObject({ model: 'm', variant: 'a', version: '1', routeGen: 7 });
    expect(found.size).toBe(43);
    for (const [id, r] of found) if (!ds.some((d) => d.eventId === id)) expect(r.d_event_id).toBeNull();
    await dl.close();
  });

  it('keeps written chunks for find up to recentBytes, oldest out first', async () => {
    const a = Array.from({ length: 5 }, () => decisionNow());
    const b = Array.from({ length: 5 }, () => decisionNow());
    const ca = build(a).take()!;
    const cb = build(b).take()!;
    // Room for one of the two chunks (the same size: same fields, ids of one length).
    const dl = new DecisionLog(t.db, { capacity: 1000, batchSize: 1000, flushMs: 60_000, recentBytes: ca.rows.length + ca.contexts.byteLength + ca.dir.byteLength });
    dl.offerChunk(ca);
    await dl.flush();
    expect(dl.find(a[2]!.eventId)).toEqual(a[2]);
    dl.offerChunk(cb);
    await dl.flush();
    expect(dl.find(a[2]!.eventId)).toBeUndefined();
    expect(dl.find(b[4]!.eventId)).toEqual(b[4]);
    await dl.close();
    const none = new DecisionLog(t.db, { capacity: 1000, batchSize: 1000, flushMs: 60_000, recentBytes: 0 });
    const c = [decisionNow()];
    none.offerChunk(build(c).take()!);
    await none.flush();
    expect(none.find(c[0]!.eventId)).toBeUndefined();
    await none.close();
  });

  it('drops a whole chunk (counted per variant) when it does not fit', async () => {
    const dl = new DecisionLog(t.db, { capacity: 10, batchSize: 100, flushMs: 60_000 });
    const fits = build(Array.from({ length: 8 }, () => decisionNow())).take()!;
    const over = build([decisionNow(), decisionNow({ variant: 'b', version: '2' }), decisionNow()]).take()!;
    expect(dl.offerChunk(fits)).toBe(true);
    expect(dl.offerChunk(over)).toBe(false);
    expect(dl.stats.dropped).toBe(3);
    const lines = dl.metricLines().join('\n');
    expect(lines).toContain('sluice_decisions_dropped_total{model="m",variant="a",version="1"} 2');
    expect(lines).toContain('sluice_decisions_dropped_total{model="m",variant="b",version="2"} 1');
    await dl.close();
    await eventually(() => (dl.stats.logged === 8 ? true : undefined), 5000, 'the chunk that fit is written at close');
  });
});
