/**
 * Decision chunks (src/learn/decision-chunk.ts): what a thread's builder encodes is read back
 * exactly (objects for listeners, one row for early feedback), whatever the unit id holds;
 * counts and time range are right; the decision log finds a chunk's decision by event id until
 * it is written, on PGlite and PostgreSQL.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { chunkOf, DecisionChunkBuilder, decisionsOf, findRow, latin1, ownRowText, chunkVariant, type ChunkVariant, type DecisionChunk } from '../../src/learn/decision-chunk.js';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { lookUp, rowDecision } from '../../src/learn/feedback-store.js';
import { chunkPlace, eventIdTime, lastEventIdBytes, lastEventIdMs, newEventId } from '../../src/learn/event-id.js';
import { DECISION_COLUMNS, rowToDecision, type Decision, type DecisionRow } from '../../src/learn/decision.js';
import type { Db } from '../../src/registry/db.js';
import { loadMigrations, migrate } from '../../src/registry/migrate.js';
import { describeEachDb, eventually, openBareDb, type TestDb } from '../helpers/services.js';

function build(ds: Decision[]) {
  const b = new DecisionChunkBuilder();
  const variants = new Map<string, ChunkVariant>();
  for (const d of ds) {
    const key = `${d.variant}/${d.version}`;
    if (!variants.has(key)) variants.set(key, chunkVariant(d.model, d.variant, d.version, d.routeGen));
    b.add(d.eventId, d.at, variants.get(key)!, d.unitId, d.propensity, d.features as Float32Array | undefined);
  }
  return b;
}

/** A chunk as an I/O thread builds it: each decision gets the builder's next id (tagged), at its time. */
function buildTagged(ds: Decision[]) {
  const b = new DecisionChunkBuilder();
  for (const d of ds) {
    d.eventId = b.nextId();
    d.at = lastEventIdMs();
    b.add(d.eventId, d.at, chunkVariant(d.model, d.variant, d.version, d.routeGen), d.unitId, d.propensity, d.features as Float32Array | undefined);
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
      decisionNow({ unitId: 'plain-id_123 [x] {y} ~' }),
      decisionNow({ unitId: 'tab\there, del \x7f, nul \u0000, lone surrogate \ud800' }),
      decisionNow({ features: new Float32Array([0.1, -3.5, NaN, Infinity, -Infinity, 1e-45]) }),
      decisionNow({ features: new Float32Array(0) }),
      decisionNow(),
    ];
    const chunk = build(ds).take()!;
    expect(chunk.n).toBe(7);
    const back = decisionsOf(chunk);
    expect(back).toEqual(ds);
    for (const d of ds) expect(findRow(chunk, d.eventId)).toEqual(d);
    expect(findRow(chunk, newEventId())).toBeUndefined();
    // chunkOf (one decision offered on its own) writes the same form.
    for (const d of ds) expect(decisionsOf(chunkOf(d))).toEqual([d]);
    for (const d of ds) expect(chunkOf(d).rows).toEqual(build([d]).take()!.rows);
  });

  it('crosses threads shared (no copy) and reads back the same on the other side', async () => {
    const ds = Array.from({ length: 300 }, (_, i) => decisionNow({ unitId: `u${i} "é"`, features: i % 2 ? new Float32Array([i, -i]) : undefined }));
    const chunk = buildTagged(ds).take()!;
    const { port1, port2 } = new MessageChannel();
    const got = new Promise<DecisionChunk>((resolve) => port2.once('message', resolve));
    port1.postMessage(chunk);
    const shared = await got;
    port1.close();
    // Shared: both sides' views are of the same memory (a write on one is seen on the other).
    for (const k of ['rows', 'contexts', 'dir'] as const) expect(shared[k].buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(decisionsOf(shared)).toEqual(ds);
    for (const i of [0, 151, 299]) expect(findRow(shared, ds[i]!.eventId)).toEqual(ds[i]);
    const first = chunk.rows[0]!;
    shared.rows[0] = 0x20;
    expect(chunk.rows[0]).toBe(0x20);
    chunk.rows[0] = first;
  });

  it('copies features at once: a view into a buffer reused afterwards keeps the values it had', () => {
    const buffer = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new DecisionChunkBuilder();
    const ds = [decisionNow(), decisionNow()];
    ds.forEach((d, i) => b.add(d.eventId, d.at, chunkVariant('m', 'a', '1', 7), undefined, 0.9, buffer.subarray(i * 3, i * 3 + 3)));
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
    expect(c.variants.map(([m, v, ver], i) => [m, v, ver, c.variantCounts[i]]).sort()).toEqual([['m', 'a', '1', 2], ['m', 'b', '2', 1]]);
    expect(b.n).toBe(0);
    expect(b.take()).toBeUndefined();
  });

  it('tags: a builder\'s ids carry its chunk\'s tag and their row, and findRow goes straight to it', () => {
    const ds = Array.from({ length: 300 }, (_, i) => decisionNow({ unitId: `u${i}` }));
    const c = buildTagged(ds).take()!;
    expect(c.tag).toBeGreaterThanOrEqual(0);
    expect(c.tag).toBeLessThan(2 ** 24);
    ds.forEach((d, i) => {
      expect(chunkPlace(d.eventId)).toEqual({ tag: c.tag, index: i });
      expect(eventIdTime(d.eventId)).toBe(d.at);
      if (i > 0) expect(d.eventId > ds[i - 1]!.eventId).toBe(true);
    });
    for (const i of [0, 1, 150, 299]) expect(findRow(c, ds[i]!.eventId)).toEqual(ds[i]);
    // The chunk's tag and a row it has, but not that row's id; a row beyond it; another tag.
    expect(findRow(c, newEventId(c.tag!, 5))).toBeUndefined();
    expect(findRow(c, newEventId(c.tag!, 300))).toBeUndefined();
    expect(findRow(c, newEventId((c.tag! + 1) % 2 ** 24, 5))).toBeUndefined();
    expect(chunkPlace('client-id')).toBeUndefined();
    // Each chunk draws its own tag.
    const tags = new Set(Array.from({ length: 50 }, () => buildTagged([decisionNow()]).take()!.tag));
    expect(tags.size).toBeGreaterThan(1);
  });

  it('rows of the builder\'s own ids at their ids\' times are short (written byte by byte as ownRowText writes them); others whole', () => {
    // Odd unit ids (escapes, non-ASCII, the empty string), contexts, arms, propensities of every
    // form, times across millisecond changes, times other than the id's (whole rows) and a
    // chunk grown past its first buffer.
    const units = [undefined, '', 'plain-1', 'quote " \\ }', 'émoji 🙂', 'nul \u0000 \ud800', 'x'.repeat(3000)];
    const props = [1, 0.5, 0.1, 1 / 3, 1e-7, 5e-324, 0];
    const b = new DecisionChunkBuilder();
    const ds: Decision[] = [];
    for (let i = 0; i < 600; i++) {
      const eventId = b.nextId();
      const d: Decision = { eventId, at: i % 5 === 4 ? lastEventIdMs() + i : lastEventIdMs(), model: i % 2 ? 'm' : 'mödel', variant: `v${i % 3}`, version: '1', propensity: props[i % props.length]!, routeGen: i % 4 };
      if (units[i % units.length] !== undefined) d.unitId = units[i % units.length];
      if (i % 6 === 1) d.features = new Float32Array([i, -i, 0.5]);
      if (i % 8 === 3) d.action = i % 16;
      b.add(eventId, d.at, chunkVariant(d.model, d.variant, d.version, d.routeGen), d.unitId, d.propensity, d.features as Float32Array | undefined, d.action);
      ds.push(d);
    }
    const c = b.take()!;
    expect(c.tag).toBeDefined();
    // Variants in the order they first appear; chunkOf writes a decision's whole row with
    // rowText, its context offset 4 (its only element's).
    const keys = ds.map((d) => JSON.stringify([d.model, d.variant, d.version, d.routeGen]));
    const variants = [...new Set(keys)];
    expect(c.variants.map((v) => JSON.stringify(v))).toEqual(variants);
    const rows = latin1(c.rows);
    const expected: string[] = [];
    let contextAt = 0;
    ds.forEach((d, i) => {
      const at = d.features ? contextAt + 4 : -1;
      if (d.at === eventIdTime(d.eventId)) {
        expected.push(ownRowText(variants.indexOf(keys[i]!), d.propensity, d.unitId, d.action, at, d.features));
      } else {
        const one = latin1(chunkOf(d).rows);
        expected.push(d.features ? one.replace(',"o":4,', `,"o":${at},`) : one);
      }
      contextAt += 4 + (d.features ? d.features.length * 4 : 0);
    });
    expect(rows).toBe(expected.join(','));
    expect(expected.filter((r) => r.startsWith('{"x":'))).toHaveLength(480);
    expect(decisionsOf(c)).toEqual(ds);
    for (const i of [0, 4, 299, 599]) expect(findRow(c, ds[i]!.eventId)).toEqual(ds[i]);
    // A request path's row: ~35 bytes where its whole row was ~145.
    const one = new DecisionChunkBuilder();
    one.add(one.nextId(), lastEventIdMs(), chunkVariant('demo-logistic', 'control', '1.0.0', 3), 'bench-unit-1', 0.5, undefined);
    expect(latin1(one.take()!.rows)).toBe('{"x":0,"p":0.5,"u":"bench-unit-1"}');
  });

  it('tags: a row added with an id the builder did not make leaves its chunk untagged, still found', () => {
    const b = new DecisionChunkBuilder();
    const ds = [decisionNow(), decisionNow(), decisionNow()];
    ds[0]!.eventId = b.nextId();
    ds[0]!.at = lastEventIdMs();
    for (const d of ds) b.add(d.eventId, d.at, chunkVariant('m', 'a', '1', 7), undefined, 0.9, undefined);
    const c = b.take()!;
    expect(c.tag).toBeUndefined();
    for (const d of ds) expect(findRow(c, d.eventId)).toEqual(d);
    // The next chunk starts tagged again.
    expect(buildTagged([decisionNow()]).take()!.tag).toBeDefined();
  });

  it('event ids stay time-ordered and carry the time lastEventIdMs reports', () => {
    let prev = '';
    for (let i = 0; i < 5000; i++) {
      const id = newEventId();
      expect(eventIdTime(id)).toBe(lastEventIdMs());
      expect(Buffer.from(lastEventIdBytes()).toString('hex')).toBe(id.replaceAll('-', ''));
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

  describe('tagged chunks', () => {
    afterEach(() => vi.restoreAllMocks());

    it('lookUp and find reach each row by its tag, beside untagged chunks and chunks sharing a tag', async () => {
      const dl = new DecisionLog(t.db, { capacity: 10_000, batchSize: 10_000, flushMs: 60_000 });
      const features = (i: number) => (i % 3 === 0 ? new Float32Array([i, -i, 0.5]) : undefined);
      const tagged = Array.from({ length: 600 }, (_, i) => decisionNow({ unitId: `t${i}`, features: features(i) }));
      const chunks = [buildTagged(tagged.slice(0, 256)).take()!, buildTagged(tagged.slice(256, 512)).take()!];
      // Two chunks drawing the same tag (random, 24 bits: it happens): each id is confirmed
      // against its own chunk's directory.
      vi.spyOn(Math, 'random').mockReturnValue(0.5);
      const same = [buildTagged(tagged.slice(512, 550)).take()!, buildTagged(tagged.slice(550)).take()!];
      vi.restoreAllMocks();
      expect(same[0]!.tag).toBe(same[1]!.tag);
      const untagged = Array.from({ length: 20 }, (_, i) => decisionNow({ unitId: `n${i}`, features: features(i) }));
      for (const c of [...chunks, ...same, build(untagged).take()!]) expect(dl.offerChunk(c)).toBe(true);
      await dl.flush();
      const stored = await t.db.query<{ tagged: number; untagged: number }>(
        'SELECT count(tag)::int AS tagged, count(*) FILTER (WHERE tag IS NULL)::int AS untagged FROM decision_chunks WHERE key = ANY($1::text[])',
        [[tagged[0]!.eventId, tagged[256]!.eventId, tagged[512]!.eventId, tagged[550]!.eventId, untagged[0]!.eventId]]);
      expect(stored[0]).toEqual({ tagged: 4, untagged: 1 });
      const all = [...tagged, ...untagged];
      const c0 = chunks[0]!.tag!;
      const strays = [newEventId(c0, 7), newEventId(c0, 400), newEventId(same[0]!.tag!, 45)];
      const found = await t.db.transaction((tx) => lookUp(tx, [...all.map((d) => d.eventId), ...strays]));
      for (const d of all) {
        const got = rowDecision(found.get(d.eventId)!, d.eventId);
        expect(got).toMatchObject({ eventId: d.eventId, at: d.at, unitId: d.unitId, propensity: 0.9, routeGen: 7 });
        if (d.features) expect([...got!.features!]).toEqual([...d.features]);
        else expect(got!.features).toBeUndefined();
      }
      for (const id of strays) expect(found.get(id)!.d_event_id).toBeNull();
      // From memory, the same.
      for (const d of [tagged[0]!, tagged[300]!, tagged[549]!, tagged[599]!, untagged[19]!]) expect(dl.find(d.eventId)).toEqual(d);
      for (const id of strays) expect(dl.find(id)).toBeUndefined();
      await dl.close();
    });
  });

  it('chunks stored before migration 014 (whole rows, no variants) still read back, beside short rows', async () => {
    const bare = await openBareDb(backend);
    try {
      const all = await loadMigrations();
      expect(all.find((m) => m.id === 14)?.name).toBe('short_decision_rows');
      await migrate(bare.db, all.filter((m) => m.id < 14));
      const old = Array.from({ length: 5 }, (_, i) => decisionNow({ unitId: `old${i}`, features: i % 2 ? new Float32Array([i, -i]) : undefined }));
      const c = build(old).take()!;
      // The INSERT of the decision log before migration 014.
      await bare.db.query(
        `INSERT INTO decision_chunks (key, span, n, tag, rows, contexts, dir)
         SELECT $1, int8range($2, $3, '[]'), $4, NULL, $5, $6, $7`,
        [c.key, c.minMs, c.maxMs, c.n, Buffer.from(c.rows), Buffer.from(c.contexts), Buffer.from(c.dir)]);
      expect(await migrate(bare.db, all)).toEqual(all.filter((m) => m.id >= 14).map((m) => m.id));
      const fresh = Array.from({ length: 5 }, (_, i) => decisionNow({ unitId: `new${i}`, variant: 'b', version: '2', routeGen: 8 }));
      const dl = new DecisionLog(bare.db, { capacity: 100, batchSize: 100, flushMs: 60_000, recentBytes: 0 });
      expect(dl.offerChunk(buildTagged(fresh).take()!)).toBe(true);
      await dl.close();
      const ds = [...old, ...fresh];
      const rows = await bare.db.query<DecisionRow & Record<string, unknown>>(`SELECT ${DECISION_COLUMNS} FROM all_decisions WHERE event_id = ANY($1::text[])`, [ds.map((d) => d.eventId)]);
      const byId = new Map(rows.map((r) => [r.event_id, rowToDecision(r)]));
      for (const d of ds) expect(byId.get(d.eventId)).toEqual(d);
      const found = await bare.db.transaction((tx) => lookUp(tx, ds.map((d) => d.eventId)));
      for (const d of ds) expect(rowDecision(found.get(d.eventId)!, d.eventId)).toEqual(d);
    } finally {
      await bare.cleanup();
    }
  });

  it('keeps written chunks for find up to recentBytes, oldest out first', async () => {
    const a = Array.from({ length: 5 }, () => decisionNow());
    const b = Array.from({ length: 5 }, () => decisionNow());
    const ca = build(a).take()!;
    const cb = build(b).take()!;
    // Room for one of the two chunks (the same size: same fields, ids of one length), counted
    // as the memory they hold (their pooled buffers whole).
    const dl = new DecisionLog(t.db, { capacity: 1000, batchSize: 1000, flushMs: 60_000, recentBytes: ca.rows.buffer.byteLength + ca.contexts.buffer.byteLength + ca.dir.buffer.byteLength });
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

  it('writes a batch again when the database aborts it for a deadlock, dropping nothing', async () => {
    // The real database behind a fault: the first chunk INSERT fails as a deadlock victim does
    // (SQLSTATE 40P01, as the experiment triggers can make it beside another replica's writes).
    let inserts = 0;
    let conflicts = Number.POSITIVE_INFINITY;
    const db: Db = {
      kind: t.db.kind,
      query: async (sql, params) => {
        if (sql.includes('INSERT INTO decision_chunks') && ++inserts <= conflicts) {
          throw Object.assign(new Error('deadlock detected'), { code: '40P01', severity: 'ERROR' });
        }
        return t.db.query(sql, params);
      },
      exec: (sql) => t.db.exec(sql),
      transaction: (fn) => t.db.transaction(fn),
      listen: (c, h) => t.db.listen(c, h),
      close: async () => undefined,
    };
    conflicts = 1;
    const dl = new DecisionLog(db, { capacity: 1000, batchSize: 1000, flushMs: 60_000 });
    const ds = Array.from({ length: 10 }, () => decisionNow());
    expect(dl.offerChunk(buildTagged(ds).take()!)).toBe(true);
    await dl.flush();
    expect(inserts).toBe(2);
    expect(dl.stats).toMatchObject({ logged: 10, dropped: 0 });
    const stored = await t.db.query<{ n: number }>('SELECT count(*)::int AS n FROM all_decisions WHERE event_id = ANY($1::text[])', [ds.map((d) => d.eventId)]);
    expect(stored[0]!.n).toBe(10);
    // Still aborted after every try: kept for later (as while the database is away), not dropped.
    inserts = 0;
    conflicts = 5;
    const more = Array.from({ length: 4 }, () => decisionNow());
    dl.offerChunk(buildTagged(more).take()!);
    await dl.flush();
    expect(dl.stats).toMatchObject({ logged: 10, dropped: 0, pending: 4 });
    await dl.close();
    expect(dl.stats).toMatchObject({ logged: 14, dropped: 0 });
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
