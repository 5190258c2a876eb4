import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/service/engine.js';
import type { Tensor } from '../../src/model/tensor.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';

const CRASH = 666;
const x = (v: number): Tensor => ({ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([v, 1, 1, 1]) });

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('engine: worker crash', () => {
  let engine: Engine;
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo();
    // One row per batch so the crashing request is the only one in flight on its worker.
    await writeFixture(repo.root, 'crashy', '1', { op: 'sum', crash_on: CRASH, delay_us: 2_000 }, { maxBatch: 1 });
    engine = await Engine.start({ modelRepository: repo.root, workers: 2, allowFixtureModels: true });
  });
  afterAll(async () => {
    await engine.close();
    await repo.cleanup();
  });

  it('fails only the in-flight request with retryable WORKER_LOST, replaces the worker, and keeps serving', async () => {
    const goods = Array.from({ length: 60 }, (_, i) => engine.infer({ model: 'crashy', inputs: [x(i)] }));
    const t0 = performance.now();
    const crash = engine.infer({ model: 'crashy', inputs: [x(CRASH)] }).then(
      () => ({ code: 'none', ms: 0 }),
      (e: { code: string; retryable: boolean }) => ({ code: e.code, retryable: e.retryable, ms: performance.now() - t0 }),
    );
    const results = await Promise.allSettled(goods);
    const failure = await crash;
    expect(failure).toMatchObject({ code: 'WORKER_LOST', retryable: true });
    // Failed when the thread died, not after some timeout.
    expect(failure.ms).toBeLessThan(5_000);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    results.forEach((r, i) => expect((r as PromiseFulfilledResult<{ outputs: Tensor[] }>).value.outputs[0]!.data[0]).toBe(i + 3));
    expect(engine.lostWorkers).toBe(1);
    // The pool is back to full strength and the replacement serves the model too.
    await waitFor(() => engine.poolThreads === 2);
    const after = await Promise.all(Array.from({ length: 40 }, (_, i) => engine.infer({ model: 'crashy', inputs: [x(i)] })));
    after.forEach((r, i) => expect(r.outputs[0]!.data[0]).toBe(i + 3));
  });

  it('survives repeated crashes, including with only the replacement workers left', async () => {
    for (let k = 0; k < 3; k++) {
      await expect(engine.infer({ model: 'crashy', inputs: [x(CRASH)] })).rejects.toMatchObject({ code: 'WORKER_LOST' });
      await expect(engine.infer({ model: 'crashy', inputs: [x(5)] })).resolves.toMatchObject({ outputs: [{ data: new Float32Array([8]) }] });
    }
    expect(engine.lostWorkers).toBe(4);
    expect(engine.ready()).toBe(true);
  });
});
