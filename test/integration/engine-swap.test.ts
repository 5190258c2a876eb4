import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/service/engine.js';
import type { Tensor } from '../../src/model/tensor.js';
import { randomF32 } from '../helpers/random.js';
import { demoWeights, logistic, tempRepo, writeFixture, writeLinear, writeOnnx } from '../helpers/repo.js';

const SWAPS = 50;
const w = demoWeights();
/** Version v computes sigmoid(x . (w * v / 10) + 0.25): every version gives different answers. */
const scaleOf = (version: string) => Number(version) / 10;

describe('engine: atomic hot swap under load', () => {
  let engine: Engine;
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo();
    for (let v = 1; v <= SWAPS + 1; v++) {
      await writeLinear(repo.root, 'swap-inline', String(v), { scale: scaleOf(String(v)), dispatch: 'inline' });
      await writeLinear(repo.root, 'swap-pool', String(v), { scale: scaleOf(String(v)), dispatch: 'pool', maxBatch: 64 });
    }
    engine = await Engine.start({ modelRepository: repo.root, workers: 1, startupModels: 'none', allowFixtureModels: true });
    await engine.load('swap-inline', { version: '1' });
    await engine.load('swap-pool', { version: '1' });
  });
  afterAll(async () => {
    await engine.close();
    await repo.cleanup();
  });

  it(`swaps ${SWAPS} times while predictions run: 0 failures, every output from the version it names`, async () => {
    const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    const seen = { 'swap-inline': new Set<string>(), 'swap-pool': new Set<string>() };
    let seed = 1;
    const client = async (model: 'swap-inline' | 'swap-pool') => {
      while (running) {
        const rows = 1 + (seed % 4);
        const x: Tensor = { name: 'features', datatype: 'FP32', shape: [rows, 100], data: randomF32(rows * 100, seed++) };
        const t0 = process.hrtime.bigint();
        try {
          const r = await engine.infer({ model, inputs: [x] });
          histogram.recordValue(Number(process.hrtime.bigint() - t0) / 1000);
          seen[model].add(r.version);
          const scale = scaleOf(r.version);
          for (let i = 0; i < rows; i++) {
            const want = logistic(x.data.subarray(i * 100, (i + 1) * 100) as Float32Array, w.map((v) => v * scale), 0.25);
            if (Math.abs((r.outputs[0]!.data[i] as number) - want) > 1e-5) failures.push(`${model}@${r.version} row ${i}: ${r.outputs[0]!.data[i]} != ${want}`);
          }
          ok++;
        } catch (e) {
          failures.push(`${model}: ${(e as Error).message}`);
        }
        // Yield to the event loop so swaps interleave with traffic.
        await new Promise((r) => setImmediate(r));
      }
    };
    const clients = [...Array(4)].flatMap(() => [client('swap-inline'), client('swap-pool')]);
    for (let v = 2; v <= SWAPS + 1; v++) {
      await Promise.all([engine.load('swap-inline', { version: String(v) }), engine.load('swap-pool', { version: String(v) })]);
      await new Promise((r) => setTimeout(r, 5));
    }
    running = false;
    await Promise.all(clients);

    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(1000);
    expect(engine.modelReady('swap-inline', String(SWAPS + 1))).toBe(true);
    // Traffic saw many different versions of both models while they were being swapped.
    expect(seen['swap-inline'].size).toBeGreaterThan(10);
    expect(seen['swap-pool'].size).toBeGreaterThan(10);
    // Every replaced version has been freed: only the last one is held, and the arena holds
    // one pooled version's slots.
    for (const model of ['swap-inline', 'swap-pool']) {
      expect(engine.heldVersions(model).map((h) => h.version)).toEqual([String(SWAPS + 1)]);
    }
    const p = (q: number) => histogram.getValueAtPercentile(q);
    // Figures, not assertions (timing depends on the machine): see bench/swap.ts.
    console.log(`swap test: ${ok} predictions, ${SWAPS} swaps x 2 models, latency us p50=${p(50)} p99=${p(99)} p99.99=${p(99.99)} max=${histogram.maxValue}`);
  });

  it('frees a replaced version only after its last in-flight batch finishes', async () => {
    // v1 is pooled and slow; v2 runs inline, so loading it does not wait for the busy worker.
    await writeFixture(repo.root, 'slowpoke', '1', { op: 'sum', delay_us: 200_000 });
    await writeFixture(repo.root, 'slowpoke', '2', { op: 'sum' }, { dispatch: 'inline' });
    await engine.load('slowpoke', { version: '1' });
    const x: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, 2, 3, 4]) };
    const inFlight = engine.infer({ model: 'slowpoke', inputs: [x] });
    await new Promise((r) => setTimeout(r, 20));
    await engine.load('slowpoke', { version: '2' });
    // v2 serves new requests; v1 is retired but still held by the running batch.
    await expect(engine.infer({ model: 'slowpoke', inputs: [x] })).resolves.toMatchObject({ version: '2' });
    expect(engine.heldVersions('slowpoke')).toEqual(expect.arrayContaining([
      expect.objectContaining({ version: '1', retired: true, refs: 1 }),
      expect.objectContaining({ version: '2', retired: false }),
    ]));
    await expect(inFlight).resolves.toMatchObject({ version: '1', outputs: [{ data: new Float32Array([10]) }] });
    expect(engine.heldVersions('slowpoke').map((h) => h.version)).toEqual(['2']);
  });

  describe('a version that fails to load or validate leaves the serving version untouched', () => {
    const probe: Tensor = { name: 'features', datatype: 'FP32', shape: [1, 100], data: randomF32(100, 4242) };
    const expectServing = async (model: string, version: string) => {
      const r = await engine.infer({ model, inputs: [probe] });
      expect(r.version).toBe(version);
      expect(r.outputs[0]!.data[0]).toBeCloseTo(logistic(probe.data as Float32Array, w.map((v) => v * scaleOf(version)), 0.25), 5);
    };
    const serving = String(SWAPS + 1);

    it.each(['swap-inline', 'swap-pool'])('%s: payload whose SHA-256 does not match is refused (ARTIFACT_INTEGRITY)', async (model) => {
      await writeLinear(repo.root, model, '100', { scale: 10, dispatch: model === 'swap-pool' ? 'pool' : 'inline' });
      const file = path.join(repo.root, model, '100', 'weights.json');
      const doc = JSON.parse(await readFile(file, 'utf8'));
      doc.bias = [9];
      await writeFile(file, JSON.stringify(doc));
      await expect(engine.load(model, { version: '100' })).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
      await expectServing(model, serving);
    });

    it.each(['swap-inline', 'swap-pool'])('%s: a version with non-finite outputs fails its smoke test (MODEL_VALIDATION_FAILED)', async (model) => {
      // Linear (no sigmoid) with weights near the float32 limit overflows to Infinity.
      await writeLinear(repo.root, model, '101', { kind: 'linear', weights: [new Array(100).fill(3e38)], dispatch: model === 'swap-pool' ? 'pool' : 'inline' });
      await expect(engine.load(model, { version: '101' })).rejects.toMatchObject({ code: 'MODEL_VALIDATION_FAILED' });
      await expectServing(model, serving);
    });

    it.each(['swap-inline', 'swap-pool'])('%s: a payload the runtime cannot load is refused (MODEL_LOAD_FAILED)', async (model) => {
      await writeLinear(repo.root, model, '102', { weights: [[1, 2, 3]], dispatch: model === 'swap-pool' ? 'pool' : 'inline' });
      await expect(engine.load(model, { version: '102' })).rejects.toMatchObject({ code: 'MODEL_LOAD_FAILED' });
      await expectServing(model, serving);
    });

    it('a corrupt ONNX graph is refused and its model keeps serving', async () => {
      await writeOnnx(repo.root, 'swap-pool', '103', 'add_mul.onnx', {
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }],
        outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
      }, { payload: Buffer.from('not a protobuf at all') });
      await expect(engine.load('swap-pool', { version: '103' })).rejects.toMatchObject({ code: 'MODEL_LOAD_FAILED' });
      await expectServing('swap-pool', serving);
      expect(engine.heldVersions('swap-pool').map((h) => h.version)).toEqual([serving]);
    });
  });
});
