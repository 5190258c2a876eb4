/**
 * Issue #13 acceptance: two replicas' learners on one database (PostgreSQL when the service
 * runs, each replica on a pool of its own; PGlite always), each applying its own half of the
 * feedback and exchanging deltas through LearnedSync, end with the state of one learner that
 * applied every event; a third replica starting later restores the latest checkpoint and pulls
 * the rest, reaching the same state.
 */
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { BanditLearner } from '../../src/learn/bandit-learner.js';
import { parseBanditConfig } from '../../src/learn/bandit/config.js';
import { initialState } from '../../src/learn/bandit/layout.js';
import { banditManifest, mulberry32 } from '../../src/learn/bandit/simulation.js';
import type { JoinedFeedback } from '../../src/learn/feedback.js';
import { LearnedSync } from '../../src/learn/learned-sync.js';
import type { Manifest } from '../../src/model/manifest.js';
import type { Db } from '../../src/registry/db.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';

const D = 6;
const K = 4;
const ACCEPT = { check: () => ({ ok: true as const }) };

function events(n: number, seed: number): JoinedFeedback[] {
  const u = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const id = `e${seed}-${i}`;
    const x = Float32Array.from({ length: D }, () => u() * 2 - 1);
    return { eventId: id, reward: u(), at: i, decision: { eventId: id, at: i, model: 'bandit', variant: '', version: '1', propensity: 0.5, routeGen: 0, features: x, action: i % K } };
  });
}

function expectClose(a: Float64Array, b: Float64Array): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  expect(worst).toBeLessThan(1e-9);
}

describeEachDb('learned state across replicas', (backend) => {
  let t: TestDb;
  let dbB: Db;
  const m: Manifest = banditManifest('linucb', K, D, { learning: { batch_size: 32, interval_ms: 60_000 } });
  const c = parseBanditConfig(m);

  beforeEach(async () => {
    t = await backend.open();
    dbB = t.connect ? await t.connect() : t.db;
  }, 120_000);
  afterEach(async () => {
    if (dbB !== t.db) await dbB.close();
    await t?.cleanup();
  });

  it('two replicas converge to the state of one learner that saw every event; a new one starts from it', async () => {
    const artifacts = new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts'));
    // Long intervals: the test drives every sync itself (flushAll), so the order is its own.
    const opts = { syncMs: 3_600_000, checkpointMs: 3_600_000 };
    const syncA = new LearnedSync(t.db, artifacts, { replica: 'a', ...opts });
    const syncB = new LearnedSync(dbB, artifacts, { replica: 'b', ...opts });
    const start = () => ({ state: initialState(c), updates: 0, events: 0 });
    const a = new BanditLearner(m, ACCEPT, start());
    const b = new BanditLearner(m, ACCEPT, start());
    syncA.started(a);
    syncB.started(b);
    const all = events(600, 1);
    const single = new BanditLearner(m, ACCEPT, start());
    for (const f of all) single.offer(f);
    single.flush();

    // Feedback arrives at either replica, in rounds; each syncs between rounds.
    for (let round = 0; round < 3; round++) {
      for (const [i, f] of all.slice(round * 200, (round + 1) * 200).entries()) (i % 3 === 0 ? a : b).offer(f);
      a.flush();
      b.flush();
      await syncA.flushAll();
      await syncB.flushAll();
    }
    // A last round of pulls: a has not yet seen b's final delta.
    await syncA.flushAll();
    const additive = (l: BanditLearner) => l.snapshot().state.slice(0);
    expectClose(additive(a), additive(single));
    expectClose(additive(b), additive(single));
    expect(a.snapshot().events).toBe(600);
    expect(b.snapshot().events).toBe(600);

    // A new replica: the latest checkpoint (whoever wrote it) plus the deltas after it.
    const syncC = new LearnedSync(t.db, artifacts, { replica: 'c', ...opts });
    const restored = await syncC.restore(m);
    expect(restored).toBeDefined();
    const cl = new BanditLearner(m, ACCEPT, restored!);
    syncC.started(cl);
    await syncC.flushAll();
    expectClose(cl.snapshot().state, single.snapshot().state);
    expect(cl.snapshot().events).toBe(600);
    for (const s of [syncA, syncB, syncC]) s.close();
    for (const l of [a, b, cl, single]) l.stop();
  });
});
