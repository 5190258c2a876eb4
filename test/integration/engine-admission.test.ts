import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/service/engine.js';
import type { Tensor } from '../../src/model/tensor.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';

const CRASH = 666;
const x = (v: number, rows = 1): Tensor => ({ name: 'x', datatype: 'FP32', shape: [rows, 4], data: new Float32Array(rows * 4).fill(v) });

type Outcome = { ok: true; at: number } | { ok: false; code: string; at: number };
function track(p: Promise<unknown>, order: Outcome[]): Promise<Outcome> {
  return p.then(
    () => {
      const o: Outcome = { ok: true, at: order.length };
      order.push(o);
      return o;
    },
    (e: { code: string }) => {
      const o: Outcome = { ok: false, code: e.code, at: order.length };
      order.push(o);
      return o;
    },
  );
}

describe('engine: admission, deadlines and dynamic batching', () => {
  let engine: Engine;
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo();
    // One row per batch, 50 ms per batch, a queue of 4: easy to fill and to make wait.
    // crash_on marks requests that must never run (they would kill the worker if they did).
    await writeFixture(repo.root, 'slow', '1', { op: 'sum', delay_us: 50_000, crash_on: CRASH }, { maxBatch: 1, queue: 4 });
    await writeFixture(repo.root, 'batched', '1', { op: 'sum' }, { maxBatch: 8, delayUs: 30_000 });
    engine = await Engine.start({ modelRepository: repo.root, workers: 1, allowFixtureModels: true });
  });
  afterAll(async () => {
    await engine.close();
    await repo.cleanup();
  });

  it('refuses a request at once with OVERLOADED when the queue is full', async () => {
    const order: Outcome[] = [];
    // 1 worker x 2 slots in flight + 4 queued = 6 accepted; the 7th and 8th are refused.
    const all = Array.from({ length: 8 }, () => track(engine.infer({ model: 'slow', inputs: [x(1)] }), order));
    const outcomes = await Promise.all(all);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(6);
    const refused = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    expect(refused.map((o) => o.code)).toEqual(['OVERLOADED', 'OVERLOADED']);
    // "At once": both refusals settled before any accepted request finished.
    expect(refused.map((o) => o.at).sort()).toEqual([0, 1]);
    expect(engine.modelStats('slow')[0]!.overloaded).toBe(2);
  });

  it('drops a request whose deadline passes while queued, without running it', async () => {
    const lostBefore = engine.lostWorkers;
    const statsBefore = engine.modelStats('slow')[0]!;
    // Two requests occupy the worker for ~100 ms; the third (a crash marker) expires in 20 ms.
    const first = engine.infer({ model: 'slow', inputs: [x(1)] });
    const second = engine.infer({ model: 'slow', inputs: [x(1)] });
    const third = engine.infer({ model: 'slow', inputs: [x(CRASH)], deadline: performance.now() + 20 });
    await expect(third).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await expect(first).resolves.toBeDefined();
    await expect(second).resolves.toBeDefined();
    const stats = engine.modelStats('slow')[0]!;
    expect(stats.expired - statsBefore.expired).toBe(1);
    expect(stats.executions - statsBefore.executions).toBe(2);
    // Had the expired request run, its crash marker would have killed the worker.
    expect(engine.lostWorkers).toBe(lostBefore);
  });

  it('refuses an already expired deadline at admission', async () => {
    await expect(engine.infer({ model: 'slow', inputs: [x(1)], deadline: performance.now() })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });

  it('holds requests up to max_queue_delay_us to fill a batch, and sends a full batch at once', async () => {
    const before = engine.modelStats('batched')[0]!.executions;
    const eight = await Promise.all(Array.from({ length: 8 }, (_, i) => engine.infer({ model: 'batched', inputs: [x(i)] })));
    eight.forEach((r, i) => expect(r.outputs[0]!.data[0]).toBe(4 * i));
    expect(engine.modelStats('batched')[0]!.executions - before).toBe(1);
    const t0 = performance.now();
    const three = await Promise.all(Array.from({ length: 3 }, (_, i) => engine.infer({ model: 'batched', inputs: [x(i, 2)] })));
    // Three requests under the row limit wait for the 30 ms delay, then go as one batch.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(engine.modelStats('batched')[0]!.executions - before).toBe(2);
    three.forEach((r, i) => expect([...(r.outputs[0]!.data as Float32Array)]).toEqual([4 * i, 4 * i]));
  });
});
