import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Engine } from '../../src/service/engine.js';
import { bundledModels } from '../../src/paths.js';
import type { Tensor } from '../../src/model/tensor.js';
import { randomF32 } from '../helpers/random.js';
import { demoWeights, logistic, tempRepo, writeFixture, writeOnnx } from '../helpers/repo.js';

const features = (rows: number, seed: number): Tensor => ({ name: 'features', datatype: 'FP32', shape: [rows, 100], data: randomF32(rows * 100, seed) });

describe('engine: bundled demo models', () => {
  let engine: Engine;
  let session: ort.InferenceSession;

  beforeAll(async () => {
    engine = await Engine.start({ modelRepository: bundledModels, workers: 2 });
    // An independent path to the same ONNX graph, to check the engine's answers.
    session = await ort.InferenceSession.create(await readFile(path.join(bundledModels, 'demo-onnx/1/model.onnx')));
  });
  afterAll(async () => {
    await engine.close();
    await session.release();
  });

  it('is live and ready, and lists the bundled models in the repository index', async () => {
    expect(engine.live()).toBe(true);
    expect(engine.ready()).toBe(true);
    expect(await engine.repositoryIndex()).toEqual([
      { name: 'demo-bandit', version: '1', state: 'READY', reason: '' },
      { name: 'demo-logistic', version: '1', state: 'READY', reason: '' },
      { name: 'demo-onnx', version: '1', state: 'READY', reason: '' },
    ]);
  });

  it('demo-logistic computes sigmoid(x . w + 0.25) with the documented weights', async () => {
    const w = demoWeights();
    for (const rows of [1, 7, 1024]) {
      const x = features(rows, rows);
      const r = await engine.infer({ model: 'demo-logistic', id: `req-${rows}`, inputs: [x] });
      expect(r).toMatchObject({ model: 'demo-logistic', version: '1', id: `req-${rows}` });
      const out = r.outputs[0]!;
      expect(out).toMatchObject({ name: 'probability', datatype: 'FP32', shape: [rows, 1] });
      for (let i = 0; i < rows; i++) {
        expect(out.data[i]).toBeCloseTo(logistic(x.data.subarray(i * 100, (i + 1) * 100) as Float32Array, w, 0.25), 5);
      }
    }
  });

  it('demo-onnx in the pool answers what onnxruntime computes, for many concurrent requests of mixed sizes', async () => {
    const before = engine.modelStats('demo-onnx')[0]!.executions;
    const sizes = Array.from({ length: 200 }, (_, i) => 1 + ((i * 37) % 13));
    const inputs = sizes.map((rows, i) => features(rows, 1000 + i));
    const results = await Promise.all(inputs.map((x) => engine.infer({ model: 'demo-onnx', inputs: [x] })));
    for (let i = 0; i < sizes.length; i++) {
      const x = inputs[i]!;
      const want = await session.run({ features: new ort.Tensor('float32', x.data as Float32Array, x.shape) });
      const got = results[i]!.outputs[0]!;
      expect(got.shape).toEqual([sizes[i], 1]);
      const w = want.probability!.data as Float32Array;
      for (let j = 0; j < w.length; j++) expect(got.data[j]).toBeCloseTo(w[j]!, 6);
    }
    // The dynamic batcher packed several requests per batch.
    const executions = engine.modelStats('demo-onnx')[0]!.executions - before;
    expect(executions).toBeLessThan(sizes.length);
    expect(engine.modelConfig('demo-onnx').dispatch).toBe('pool');
  });

  it('inferNow answers an inline model at once and a pooled one with a promise, counting both alike', async () => {
    const x = features(3, 77);
    const before = engine.modelStats('demo-logistic')[0]!;
    const now = engine.inferNow({ model: 'demo-logistic', inputs: [x] });
    expect(now).not.toBeInstanceOf(Promise);
    expect(now).toEqual(await engine.infer({ model: 'demo-logistic', inputs: [x] }));
    expect(engine.modelStats('demo-logistic')[0]).toMatchObject({ success: before.success + 2, rows: before.rows + 6, executions: before.executions + 2 });
    const pooled = engine.inferNow({ model: 'demo-onnx', inputs: [x] });
    expect(pooled).toBeInstanceOf(Promise);
    expect((await pooled).outputs[0]!.shape).toEqual([3, 1]);
    // Refusals are thrown at once on the inline path, and nothing stays held.
    expect(() => engine.inferNow({ model: 'demo-logistic', inputs: [{ ...x, shape: [3, 99] }] })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(engine.heldVersions('demo-logistic')).toEqual([expect.objectContaining({ refs: 0 })]);
    expect(engine.heldVersions('demo-onnx')).toEqual([expect.objectContaining({ refs: 0 })]);
  });

  it('serves metadata and config in Open Inference Protocol terms', () => {
    expect(engine.modelMetadata('demo-logistic')).toEqual({
      name: 'demo-logistic',
      versions: ['1'],
      platform: 'sluice_logistic',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    });
    expect(engine.modelConfig('demo-logistic')).toMatchObject({ maxBatchSize: 1024, dispatch: 'inline', platform: 'sluice_logistic' });
    expect(engine.modelReady('demo-onnx')).toBe(true);
    expect(engine.modelReady('demo-onnx', '1')).toBe(true);
    expect(engine.modelReady('demo-onnx', '2')).toBe(false);
    expect(engine.modelReady('nope')).toBe(false);
  });

  it.each([
    ['an unknown model', { model: 'nope', inputs: [] }, 'MODEL_NOT_FOUND'],
    ['an unknown version', { model: 'demo-logistic', version: '9', inputs: [features(1, 1)] }, 'VERSION_NOT_FOUND'],
    ['a missing input', { model: 'demo-logistic', inputs: [] }, 'INPUT_MISSING'],
    ['a wrong shape', { model: 'demo-logistic', inputs: [{ ...features(1, 1), shape: [1, 99] }] }, 'SHAPE_MISMATCH'],
    ['too many rows', { model: 'demo-onnx', inputs: [features(1025, 1)] }, 'BATCH_TOO_LARGE'],
    ['an unknown output', { model: 'demo-onnx', inputs: [features(1, 1)], outputs: ['logits'] }, 'OUTPUT_UNKNOWN'],
    ['an expired deadline', { model: 'demo-logistic', inputs: [features(1, 1)], deadline: performance.now() - 1 }, 'DEADLINE_EXCEEDED'],
  ])('rejects %s with a coded error', async (_what, req, code) => {
    await expect(engine.infer(req as never)).rejects.toMatchObject({ code });
    // ...and keeps serving.
    await expect(engine.infer({ model: 'demo-logistic', inputs: [features(1, 2)] })).resolves.toMatchObject({ version: '1' });
  });
});

describe('engine: multi-tensor, non-float and failing models', () => {
  let engine: Engine;
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo();
    const addMulSig = {
      inputs: [{ name: 'a', datatype: 'FP32', shape: [-1, 4] }, { name: 'b', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'sum', datatype: 'FP32', shape: [-1, 4] }, { name: 'product', datatype: 'FP32', shape: [-1, 4] }],
    };
    await writeOnnx(repo.root, 'add-mul', '1', 'add_mul.onnx', addMulSig, { dispatch: 'pool' });
    await writeOnnx(repo.root, 'add-mul-inline', '1', 'add_mul.onnx', addMulSig, { dispatch: 'inline' });
    await writeOnnx(repo.root, 'double', '1', 'double_int64.onnx', {
      inputs: [{ name: 'x', datatype: 'INT64', shape: [-1, 3] }],
      outputs: [{ name: 'y', datatype: 'INT64', shape: [-1, 3] }],
    });
    await writeFixture(repo.root, 'fail-pool', '1', { op: 'sum', error_on: 13 });
    await writeFixture(repo.root, 'fail-inline', '1', { op: 'sum', error_on: 13 }, { dispatch: 'inline' });
    engine = await Engine.start({ modelRepository: repo.root, workers: 1, allowFixtureModels: true });
  });
  afterAll(async () => {
    await engine.close();
    await repo.cleanup();
  });

  it.each(['add-mul', 'add-mul-inline'])('%s: two inputs and two outputs come back per request, pooled and inline', async (model) => {
    const reqs = Array.from({ length: 40 }, (_, i) => {
      const rows = 1 + (i % 5);
      return {
        a: { name: 'a', datatype: 'FP32' as const, shape: [rows, 4], data: randomF32(rows * 4, i) },
        b: { name: 'b', datatype: 'FP32' as const, shape: [rows, 4], data: randomF32(rows * 4, 100 + i) },
      };
    });
    const results = await Promise.all(reqs.map((r) => engine.infer({ model, inputs: [r.b, r.a] })));
    results.forEach((res, i) => {
      const { a, b } = reqs[i]!;
      const [sum, product] = res.outputs;
      expect(sum!.name).toBe('sum');
      for (let j = 0; j < a.data.length; j++) {
        expect(sum!.data[j]).toBeCloseTo(a.data[j]! + b.data[j]!, 6);
        expect(product!.data[j]).toBeCloseTo(a.data[j]! * b.data[j]!, 6);
      }
    });
    const only = await engine.infer({ model, inputs: [reqs[0]!.a, reqs[0]!.b], outputs: ['product'] });
    expect(only.outputs.map((o) => o.name)).toEqual(['product']);
  });

  it('carries INT64 tensors through the arena and onnxruntime', async () => {
    const data = new BigInt64Array([1n, -2n, 3n, 2n ** 40n, 0n, -7n]);
    const r = await engine.infer({ model: 'double', inputs: [{ name: 'x', datatype: 'INT64', shape: [2, 3], data }] });
    expect([...(r.outputs[0]!.data as BigInt64Array)]).toEqual([2n, -4n, 6n, 2n ** 41n, 0n, -14n]);
  });

  it.each(['fail-pool', 'fail-inline'])('%s: a model failure is MODEL_ERROR with a sanitised message, and only that request fails', async (model) => {
    const x = (v: number): Tensor => ({ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([v, 1, 1, 1]) });
    const bad = engine.infer({ model, inputs: [x(13)] });
    const good = engine.infer({ model, inputs: [x(2)] });
    const err = await bad.then(() => undefined, (e: Error & { code: string }) => e);
    expect(err?.code).toBe('MODEL_ERROR');
    expect(err?.message).not.toContain('/internal/path');
    // With one slot per batch boundary the good request may share the failing batch when pooled;
    // sent alone afterwards it must succeed.
    await good.catch(() => undefined);
    await expect(engine.infer({ model, inputs: [x(2)] })).resolves.toMatchObject({ outputs: [{ data: new Float32Array([5]) }] });
  });
});
