/**
 * The online learners (src/learn/bandit-learner.ts, logistic-learner.ts) with their stability
 * monitors: a poisonous batch (NaN contexts, huge rewards) is rejected, the published state
 * stays the last good one and a runtime on it keeps serving; good batches around it are kept.
 */
import { describe, expect, it } from 'vitest';
import { BanditLearner } from '../../src/learn/bandit-learner.js';
import { parseBanditConfig } from '../../src/learn/bandit/config.js';
import { initialState } from '../../src/learn/bandit/layout.js';
import { BanditPolicy } from '../../src/learn/bandit/policy.js';
import { banditManifest, mulberry32 } from '../../src/learn/bandit/simulation.js';
import { createRng } from '../../src/native.js';
import type { JoinedFeedback } from '../../src/learn/feedback.js';
import { defaultJudge } from '../../src/learn/learners.js';
import { LogisticLearner } from '../../src/learn/logistic-learner.js';
import { parseManifest } from '../../src/model/manifest.js';
import { loadBandit } from '../../src/worker/runtimes/bandit.js';
import { loadOnlineLogistic } from '../../src/worker/runtimes/online-logistic.js';
import type { BatchTensor } from '../../src/worker/runtimes/types.js';

const D = 4;
const K = 3;

function event(i: number, x: ArrayLike<number>, arm: number | undefined, reward: number): JoinedFeedback {
  const id = `e${i}`;
  return { eventId: id, reward, at: i, decision: { eventId: id, at: i, model: 'sim', variant: '', version: '1', propensity: 0.5, routeGen: 0, features: Float32Array.from(x), ...(arm === undefined ? {} : { action: arm }) } };
}

function goodBatch(u: () => number, from: number, n: number): JoinedFeedback[] {
  return Array.from({ length: n }, (_, i) => {
    const x = Array.from({ length: D }, () => u() * 2 - 1);
    const arm = (from + i) % K;
    return event(from + i, x, arm, (arm === 1 ? 0.7 : 0.2) + 0.1 * (u() - 0.5));
  });
}

describe('bandit learner stability', () => {
  const m = banditManifest('linucb', K, D, { learning: { batch_size: 16, interval_ms: 1000 }, seed: 1 });

  it('rejects a batch with NaN contexts or huge rewards and keeps serving the last good state', () => {
    const learner = new BanditLearner(m, defaultJudge(m), { state: initialState(parseBanditConfig(m)), updates: 0, events: 0 });
    const u = mulberry32(1);
    let next = 0;
    for (let b = 0; b < 20; b++) {
      for (const f of goodBatch(u, next, 16)) learner.offer(f);
      next += 16;
      learner.flush();
    }
    expect(learner.counters.updates).toBe(20);
    const good = learner.snapshot();
    const runtime = loadBandit(m, new Uint8Array(0), learner.cell.buffer);
    const x = Float32Array.from([0.1, -0.2, 0.3, 0.4]);
    runtime.run([{ data: x, shape: [1, D] }], 1);
    expect(runtime.learned!.lastState).toBe(20);

    // NaN contexts: refused before anything is applied.
    for (let i = 0; i < 16; i++) learner.offer(event(next++, [NaN, 0, 0, 0], i % K, 0.5));
    expect(learner.flush()).toBe(0);
    expect(learner.counters.rejected.get('invalid_input')).toBe(16);
    // Huge rewards: the loss spikes far above its running median.
    for (let i = 0; i < 16; i++) learner.offer(event(next++, [1, 1, 1, 1], i % K, 1e12));
    expect(learner.flush()).toBe(0);
    expect(learner.counters.rejected.get('loss_spike')).toBe(16);
    expect([...learner.snapshot().state]).toEqual([...good.state]);
    const out = runtime.run([{ data: x, shape: [1, D] }], 1) as BatchTensor[];
    expect(runtime.learned!.lastState).toBe(20);
    expect((out[2]!.data as Float32Array).every(Number.isFinite)).toBe(true);

    // A good batch after the poison is applied as usual; a poisoned batch queued beside good
    // ones in one flush takes only itself out.
    for (const f of goodBatch(u, next, 16)) learner.offer(f);
    next += 16;
    for (let i = 0; i < 16; i++) learner.offer(event(next++, [1, 1, 1, 1], i % K, -1e12));
    for (const f of goodBatch(u, next, 16)) learner.offer(f);
    expect(learner.flush()).toBe(32);
    expect(learner.counters.updates).toBe(22);
    runtime.run([{ data: x, shape: [1, D] }], 1);
    expect(runtime.learned!.lastState).toBe(22);
  });

  it('decides from every new publication: the serving form a runtime keeps is rebuilt when the state changes', () => {
    const learner = new BanditLearner(m, defaultJudge(m), { state: initialState(parseBanditConfig(m)), updates: 0, events: 0 });
    const runtime = loadBandit(m, new Uint8Array(0), learner.cell.buffer);
    // The reference decides straight from the learner's state (no serving form).
    const reference = new BanditPolicy(parseBanditConfig(m), createRng(1));
    const want = { action: new Int32Array(1), propensity: new Float32Array(1), scores: new Float32Array(K) };
    const u = mulberry32(5);
    const x = Float32Array.from([0.3, -0.1, 0.8, 0.2]);
    let next = 0;
    const seen = new Set<string>();
    // One publication between decisions, then two (the same slot written again), then none.
    for (const publications of [0, 1, 1, 2, 2, 0, 1, 3]) {
      for (let p = 0; p < publications; p++) {
        for (const f of goodBatch(u, next, 8)) learner.offer(f);
        next += 8;
        learner.flush();
      }
      const got = (runtime.run([{ data: x, shape: [1, D] }], 1) as BatchTensor[])[2]!.data as Float32Array;
      reference.decide(learner.snapshot().state, x, 1, want);
      for (let k = 0; k < K; k++) expect(got[k]).toBeCloseTo(want.scores[k]!, 5);
      expect(runtime.learned!.lastState).toBe(learner.counters.updates);
      seen.add([...got].join());
    }
    // The scores did move with the state (the check above is not comparing two constants).
    expect(seen.size).toBeGreaterThanOrEqual(5);
  });

  it('refuses Bernoulli rewards outside [0, 1] and feedback without an arm or with the wrong context width', () => {
    const tm = banditManifest('thompson', K, 1, { reward: 'bernoulli', learning: { batch_size: 8, interval_ms: 1000 } });
    const learner = new BanditLearner(tm, defaultJudge(tm), { state: initialState(parseBanditConfig(tm)), updates: 0, events: 0 });
    learner.offer(event(1, [1], 0, 2));
    expect(learner.flush()).toBe(0);
    expect(learner.counters.rejected.get('invalid_input')).toBe(1);
    learner.offer(event(2, [1], undefined, 1));
    learner.offer(event(3, [1, 2], 0, 1));
    expect(learner.counters.unusable).toBe(2);
    learner.offer(event(4, [1], 2, 1));
    expect(learner.flush()).toBe(1);
    expect([...learner.snapshot().state]).toEqual([0, 0, 1, 0, 0, 0]);
  });
});

describe('online-logistic learner', () => {
  const m = parseManifest({
    name: 'ol', version: '1', kind: 'online-logistic', max_batch_size: 16,
    signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, D] }], outputs: [{ name: 'p', datatype: 'FP32', shape: [-1, 1] }] },
    payload: { file: 'w.json', sha256: '0'.repeat(64) },
    parameters: { schedule: { type: 'constant', lr: 0.5 }, learning: { batch_size: 32, interval_ms: 1000 } },
  });
  const payload = new TextEncoder().encode(JSON.stringify({ weights: [[0, 0, 0, 0]], bias: [0] }));

  it('learns labels from feedback, publishes to its runtime, and rejects a poisoned batch', () => {
    const learner = new LogisticLearner(m, { weights: new Float32Array(D), bias: 0 });
    const runtime = loadOnlineLogistic(m, payload, learner.cell.buffer);
    const x = Float32Array.from([1, 0, 0, 0]);
    const p0 = ((runtime.run([{ data: x, shape: [1, D] }], 1) as BatchTensor[])[0]!.data as Float32Array)[0]!;
    expect(p0).toBeCloseTo(0.5, 6);
    const u = mulberry32(2);
    for (let b = 0; b < 40; b++) {
      for (let i = 0; i < 32; i++) {
        const row = Array.from({ length: D }, () => u() * 2 - 1);
        learner.offer(event(b * 32 + i, row, undefined, row[0]! > 0 ? 1 : 0));
      }
      learner.flush();
    }
    const p1 = ((runtime.run([{ data: x, shape: [1, D] }], 1) as BatchTensor[])[0]!.data as Float32Array)[0]!;
    expect(p1).toBeGreaterThan(0.8);
    expect(runtime.learned!.lastState).toBe(40);
    const before = learner.snapshot().state.slice();
    for (let i = 0; i < 32; i++) learner.offer(event(9000 + i, [1e6, 0, 0, 0], undefined, 0));
    expect(learner.flush()).toBe(0);
    expect([...learner.counters.rejected.keys()][0]).toMatch(/spike/);
    expect([...learner.snapshot().state]).toEqual([...before]);
    for (let i = 0; i < 4; i++) learner.offer(event(9100 + i, [0, 0, 0, 0], undefined, 3));
    expect(learner.flush()).toBe(0);
    expect(learner.counters.rejected.get('invalid_input')).toBe(4);
  });
});

describe('learner_unstable (the alert source)', () => {
  it('reads 1 for the window after a rejected update, 0 for a stable learner, no value for a version that learns nothing', async () => {
    const { Learners } = await import('../../src/learn/learners.js');
    const { serverSignals } = await import('../../src/control/alerts/server-signals.js');
    const m = banditManifest('linucb', K, D, { learning: { batch_size: 16, interval_ms: 60_000 }, seed: 1 });
    const learners = new Learners({ judge: defaultJudge });
    const learner = await learners.acquire(m, new Uint8Array(0));
    try {
      const signals = serverSignals({
        windowStats: () => Promise.reject(new Error('unused')), servedVersions: () => [], feedbackLogBytes: () => 0, sloMs: 10,
        learnerUnstable: (model, version, windowMs) => learners.unstable(model, version, windowMs),
      });
      const read = (version: string) => signals.read('learner_unstable', { model: m.name, version });
      const mine = (f: JoinedFeedback): JoinedFeedback => ({ ...f, decision: { ...f.decision, model: m.name, version: m.version } });
      const u = mulberry32(3);
      for (const f of goodBatch(u, 0, 16)) learners.offer(mine(f));
      expect(learner.flush()).toBe(16);
      expect(await read(m.version)).toBe(0);
      expect(await read('other')).toBeUndefined();
      for (let i = 0; i < 16; i++) learners.offer(mine(event(100 + i, [NaN, 0, 0, 0], i % K, 0.5)));
      expect(learner.flush()).toBe(0);
      expect(await read(m.version)).toBe(1);
      // A minute later (the signal's window) without another rejection it is stable again.
      expect(learners.unstable(m.name, m.version, 60_000, Date.now() + 61_000)).toBe(false);
    } finally {
      learners.release(learner);
    }
  });
});
