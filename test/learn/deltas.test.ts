/**
 * Replicas exchanging additive deltas through one database (PGlite always; PostgreSQL, each
 * replica on its own pool, when the service runs): every replica converges to the sum of every
 * delta, applied once; a replica started from a checkpoint, or restarted under its old name,
 * reaches the same sum; a publish whose answer was lost is not stored twice; pruning deletes only
 * what every checkpoint includes and a replica left behind is told so.
 */
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { CheckpointStore, type Watermarks } from '../../src/learn/checkpoints.js';
import { DeltaExchange } from '../../src/learn/deltas.js';
import { unavailable, type Db, type Row } from '../../src/registry/db.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';
import { mulberry32, randomF64 } from '../helpers/random.js';

const L = 64;
const model = 'bandit';
const version = '3';

/** A learner as the protocol in src/learn/deltas.ts describes it, reduced to a sum. */
class Replica {
  state = new Float64Array(L);
  events = 0;
  watermarks: Watermarks = {};
  private pending = new Float64Array(L);
  private pendingEvents = 0;

  constructor(readonly ex: DeltaExchange) {}

  /** Own feedback: applied at once, published later. */
  learn(delta: Float64Array, events: number): void {
    for (let i = 0; i < L; i++) {
      this.state[i]! += delta[i]!;
      this.pending[i]! += delta[i]!;
    }
    this.events += events;
    this.pendingEvents += events;
  }

  async publish(): Promise<void> {
    if (this.pendingEvents === 0) return;
    await this.ex.publish(this.pending, this.pendingEvents);
    this.pending = new Float64Array(L);
    this.pendingEvents = 0;
  }

  /** Pulls until nothing is left; returns how many deltas it added. */
  async pullAll(): Promise<number> {
    let added = 0;
    for (;;) {
      const r = await this.ex.pull(this.watermarks);
      for (const d of r.deltas) {
        for (let i = 0; i < L; i++) this.state[i]! += d.values[i]!;
        this.events += d.events;
      }
      added += r.deltas.length;
      this.watermarks = r.watermarks;
      if (!r.more) return added;
    }
  }

  /** A checkpoint right after a publish, as the protocol asks. */
  async checkpoint(store: CheckpointStore): Promise<void> {
    await this.publish();
    await this.pullAll();
    await store.save({ model, version, state: 0, events: this.events, replica: this.ex.replica, watermarks: this.watermarks }, this.state);
  }

  static async fromCheckpoint(ex: DeltaExchange, store: CheckpointStore): Promise<Replica> {
    const r = new Replica(ex);
    const restored = (await store.latest(model, version))!;
    r.state = new Float64Array(restored.bytes.buffer, 0, L).slice();
    r.events = restored.row.events;
    r.watermarks = restored.row.watermarks;
    return r;
  }
}

function expectClose(actual: Float64Array, expected: Float64Array): void {
  for (let i = 0; i < L; i++) expect(actual[i]).toBeCloseTo(expected[i]!, 9);
}

describeEachDb('learner deltas between replicas', (backend) => {
  let t: TestDb;
  let dbB: Db;
  let store: CheckpointStore;
  let graceStore: CheckpointStore;

  beforeEach(async () => {
    t = await backend.open();
    dbB = t.connect ? await t.connect() : t.db; // PostgreSQL: replica b on a pool of its own
    // No grace period: the pruning test shows what happens to a replica left behind.
    const artifacts = new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts'));
    store = new CheckpointStore(t.db, artifacts, { retention: { last: 2, hourly: 0, daily: 0 }, deltaGraceMs: 0 });
    graceStore = new CheckpointStore(t.db, artifacts, { retention: { last: 2, hourly: 0, daily: 0 } });
  }, 120_000);
  afterEach(async () => {
    await t?.cleanup();
  });

  const exchange = (db: Db, replica: string, maxPerPull = 7): DeltaExchange => new DeltaExchange(db, { model, version, replica, length: L, maxPerPull });

  it('two replicas, a third from a checkpoint and a restarted one all reach the sum of every delta', async () => {
    const a = new Replica(exchange(t.db, 'a'));
    const b = new Replica(exchange(dbB, 'b'));
    const total = new Float64Array(L);
    let totalEvents = 0;
    const rnd = mulberry32(13);
    let seed = 100;
    const step = async (r: Replica): Promise<void> => {
      const d = randomF64(L, seed++, 10);
      const events = 1 + Math.floor(rnd() * 50);
      for (let i = 0; i < L; i++) total[i]! += d[i]!;
      totalEvents += events;
      r.learn(d, events);
      if (rnd() < 0.6) await r.publish();
      if (rnd() < 0.3) await r.pullAll();
    };
    let c: Replica | undefined;
    for (let round = 0; round < 60; round++) {
      await Promise.all([step(a), step(b)]);
      // The default grace period keeps the deltas b has not pulled yet.
      if (round === 30) await a.checkpoint(graceStore);
      if (round === 40) c = await Replica.fromCheckpoint(exchange(t.db, 'c'), graceStore);
      if (c && round % 5 === 0) await c.pullAll();
    }
    await Promise.all([a.publish(), b.publish()]);
    await Promise.all([a.pullAll(), b.pullAll(), c!.pullAll()]);
    for (const r of [a, b, c!]) {
      expectClose(r.state, total);
      expect(r.events).toBe(totalEvents);
      expect(await r.pullAll()).toBe(0); // nothing is given twice
    }
    expect(a.watermarks).toEqual(b.watermarks);
    expect(c!.watermarks).toEqual(a.watermarks);

    // Replica b restarts under its own name from an older checkpoint (a's, round 30): its own
    // deltas published since are not in that checkpoint; its new process pulls them once.
    const b2 = await Replica.fromCheckpoint(exchange(dbB, 'b'), graceStore);
    expect(b2.watermarks.b).toBeLessThan(b.watermarks.b!);
    expect(await b2.pullAll()).toBeGreaterThan(0);
    expectClose(b2.state, total);
    expect(b2.events).toBe(totalEvents);
    // It continues b's sequence, and the others take what it publishes once.
    const d = randomF64(L, 999);
    b2.learn(d, 5);
    await b2.publish();
    for (let i = 0; i < L; i++) total[i]! += d[i]!;
    for (const r of [a, c!]) {
      expect(await r.pullAll()).toBe(1);
      expectClose(r.state, total);
    }
    expect(await b2.pullAll()).toBe(0);
    expect(b2.watermarks).toEqual(a.watermarks);
  });

  it('a publish whose answer was lost, sent again, is stored once; two processes under one name are refused', async () => {
    let loseNext = true;
    const lossy: Db = {
      kind: t.db.kind,
      query: async <T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> => {
        const rows = await t.db.query<T>(sql, params);
        // Committed, then the connection drops before the answer arrives.
        if (loseNext && sql.includes('INSERT INTO learner_deltas')) {
          loseNext = false;
          throw unavailable(new Error('connection lost after commit'));
        }
        return rows;
      },
      transaction: (fn) => t.db.transaction(fn),
      exec: (sql) => t.db.exec(sql),
      listen: (c, h) => t.db.listen(c, h),
      close: () => t.db.close(),
    };
    const ex = exchange(lossy, 'a');
    const d = randomF64(L, 1);
    await expect(ex.publish(d, 3)).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
    expect(await ex.publish(d, 3)).toBe(1);
    expect(await ex.publish(randomF64(L, 2), 1)).toBe(2);
    expect(await t.db.query('SELECT seq FROM learner_deltas ORDER BY seq')).toHaveLength(2);
    const other = new Replica(exchange(t.db, 'b'));
    await other.pullAll();
    expect(other.events).toBe(4);

    // A second process publishing as "a" finds seq 3 taken by another delta once "a" moves on.
    const twin = exchange(t.db, 'a');
    await twin.pull({}); // started: sees seqs up to 2
    await ex.publish(randomF64(L, 3), 1);
    await expect(twin.publish(randomF64(L, 4), 1)).rejects.toMatchObject({ code: 'INTERNAL' });
  });

  it('pruning deletes only the deltas every checkpoint includes; a replica left behind gets DELTAS_PRUNED', async () => {
    const a = new Replica(exchange(t.db, 'a'));
    const b = new Replica(exchange(dbB, 'b'));
    const laggard = new Replica(exchange(t.db, 'z'));
    const total = new Float64Array(L);
    const learn = (r: Replica, seed: number): void => {
      const d = randomF64(L, seed);
      for (let i = 0; i < L; i++) total[i]! += d[i]!;
      r.learn(d, 1);
    };
    for (let i = 0; i < 4; i++) {
      learn(a, i);
      await a.publish();
      learn(b, 100 + i);
      await b.publish();
    }
    await laggard.pullAll(); // has a:4, b:4
    const count = async (): Promise<number> => Number((await t.db.query('SELECT count(*) AS n FROM learner_deltas'))[0]!.n);
    expect(await count()).toBe(8);
    for (let round = 0; round < 3; round++) {
      learn(a, 10 + round);
      learn(b, 110 + round);
      await b.publish();
      await a.checkpoint(store); // retention keeps the last 2: pruning follows the older one
    }
    // Checkpoints kept: a's 2nd and 3rd, including a:6/b:6 and a:7/b:7 -> seqs <= 6 deleted.
    const kept = await store.list(model, version);
    expect(kept.map((r) => r.watermarks)).toEqual([{ a: 7, b: 7 }, { a: 6, b: 6 }]);
    expect(await count()).toBe(2);
    await expect(laggard.pullAll()).rejects.toMatchObject({ code: 'DELTAS_PRUNED' });
    // Restoring the latest checkpoint brings it back in step.
    const z = await Replica.fromCheckpoint(exchange(t.db, 'z'), store);
    await z.pullAll();
    expectClose(z.state, total);

    // Every delta of "a" is pruned after one more checkpoint; a restarted "a" must not reuse seq 1..8.
    await a.checkpoint(store);
    await a.checkpoint(store);
    expect(await t.db.query("SELECT seq FROM learner_deltas WHERE replica = 'a'")).toEqual([]);
    const a2 = await Replica.fromCheckpoint(exchange(t.db, 'a'), store);
    learn(a2, 500);
    await a2.publish();
    expect((await t.db.query<{ seq: unknown }>("SELECT seq FROM learner_deltas WHERE replica = 'a'")).map((r) => Number(r.seq))).toEqual([8]);
    await z.pullAll();
    expectClose(z.state, total);
  });

  it('refuses deltas that would poison every replica', async () => {
    const ex = exchange(t.db, 'a');
    const nan = new Float64Array(L);
    nan[5] = Number.NaN;
    const inf = new Float64Array(L);
    inf[0] = Number.POSITIVE_INFINITY;
    for (const [delta, events] of [[nan, 1], [inf, 1], [new Float64Array(L - 1), 1], [new Float64Array(0), 1], [new Float64Array(L), -1], [new Float64Array(L), 0.5], [[1, 2], 1]] as const) {
      expect(() => ex.publish(delta as Float64Array, events)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(await t.db.query('SELECT 1 FROM learner_deltas')).toEqual([]);
    await expect(ex.pull({ b: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(ex.pull(null as unknown as Watermarks)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => new DeltaExchange(t.db, { model, version, replica: '' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
