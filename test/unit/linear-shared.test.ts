import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { parseManifest, type Manifest } from '../../src/model/manifest.js';
import { Activation, forgetSharedLinear, LinearKernel, linearSharedLive } from '../../src/native.js';
import { loadRuntime, releaseShared, type Runtime, type SharedRuntime } from '../../src/worker/runtimes/index.js';
import { randomF32 } from '../helpers/random.js';

const NO_PAYLOAD = new Uint8Array(0);
const OPTS = { allowFixtures: false, inWorker: false } as const;

function manifest(kind: 'linear' | 'logistic' | 'onnx', features: number, outputs: number, maxBatch = 4): Manifest {
  return parseManifest({
    name: 'shared',
    version: '1',
    kind,
    signature: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, features] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, outputs] }],
    },
    max_batch_size: maxBatch,
    payload: { file: 'weights.json', sha256: 'a'.repeat(64) },
  });
}

function payload(features: number, outputs: number, seed: number): Uint8Array {
  const w = randomF32(features * outputs, seed);
  const weights = Array.from({ length: outputs }, (_, o) => Array.from(w.subarray(o * features, (o + 1) * features)));
  return Buffer.from(JSON.stringify({ weights, bias: Array.from(randomF32(outputs, seed + 1)) }));
}

function run(rt: Runtime, x: Float32Array, rows: number): Float32Array {
  const outs = rt.run([{ data: x, shape: [rows, x.length / rows] }], rows);
  return (outs as Array<{ data: Float32Array }>)[0]!.data;
}

async function rejection(p: Promise<unknown>): Promise<SluiceError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(SluiceError);
  return e as SluiceError;
}

function nativeCode(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('linear runtimes built from shared weights', () => {
  it('compute what the runtime they were shared from computes, with the same buffer behaviour', async () => {
    for (const kind of ['linear', 'logistic'] as const) {
      for (const outputs of [1, 3]) {
        const m = manifest(kind, 37, outputs);
        const original = await loadRuntime(m, payload(37, outputs, outputs), OPTS);
        const shared = original.share!();
        expect(structuredClone(shared)).toEqual(shared);
        const adopted = await loadRuntime(m, NO_PAYLOAD, { ...OPTS, shared });
        releaseShared(shared);
        // 6 rows is more than max_batch_size (4): the path without the scratch buffer.
        for (const rows of [1, 4, 6]) {
          const x = randomF32(rows * 37, rows);
          const mine = run(adopted, x, rows);
          expect(Array.from(mine), `${kind} O=${outputs} rows=${rows}`).toEqual(Array.from(run(original, x, rows)));
          // Results are copies: the next call does not overwrite them.
          const before = Array.from(mine);
          run(adopted, randomF32(rows * 37, rows + 100), rows);
          expect(Array.from(mine)).toEqual(before);
        }
        // The pool path writes into the caller's arrays.
        const into = new Float32Array(2 * outputs);
        const x = randomF32(2 * 37, 9);
        const outs = adopted.run([{ data: x, shape: [2, 37] }], 2, [into]) as Array<{ data: Float32Array }>;
        expect(outs[0]!.data).toBe(into);
        expect(Array.from(into)).toEqual(Array.from(run(original, x, 2)));
        await adopted.dispose();
        await original.dispose();
      }
    }
  });

  it('refuses a released description with MODEL_LOAD_FAILED, the addon code as its cause', async () => {
    const m = manifest('logistic', 8, 2);
    const original = await loadRuntime(m, payload(8, 2, 1), OPTS);
    const shared = original.share!();
    releaseShared(shared);
    releaseShared(shared); // idempotent
    const e = await rejection(loadRuntime(m, NO_PAYLOAD, { ...OPTS, shared }));
    expect(e.code).toBe('MODEL_LOAD_FAILED');
    expect((e.cause as { code?: string }).code).toBe('ERR_NATIVE_UNKNOWN_TOKEN');
    expect(nativeCode(() => LinearKernel.adopt(shared.token, 8, 2))).toBe('ERR_NATIVE_UNKNOWN_TOKEN');
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 32]) {
      expect(nativeCode(() => LinearKernel.adopt(bad, 8, 2)), `token ${bad}`).toBe('ERR_NATIVE_UNKNOWN_TOKEN');
      expect(forgetSharedLinear(bad)).toBe(false);
    }
    // The runtime it came from is unaffected.
    expect(run(original, randomF32(8, 3), 1).length).toBe(2);
    await original.dispose();
  });

  it('refuses a description that does not fit the manifest', async () => {
    const original = await loadRuntime(manifest('logistic', 8, 2), payload(8, 2, 2), OPTS);
    const shared = original.share!();
    try {
      // Other sizes, or linear (no activation) for weights shared as logistic (softmax).
      for (const m of [manifest('logistic', 9, 2), manifest('logistic', 8, 3), manifest('linear', 8, 2)]) {
        expect((await rejection(loadRuntime(m, NO_PAYLOAD, { ...OPTS, shared }))).code).toBe('MODEL_LOAD_FAILED');
      }
      expect((await rejection(loadRuntime(manifest('onnx', 8, 2), NO_PAYLOAD, { ...OPTS, shared }))).code).toBe('MODEL_LOAD_FAILED');
      // A description edited to agree with a wrong manifest is still refused by the addon, which
      // knows the weights' real shape.
      const lying: SharedRuntime = { ...shared, cols: 9 };
      const e = await rejection(loadRuntime(manifest('logistic', 9, 2), NO_PAYLOAD, { ...OPTS, shared: lying }));
      expect((e.cause as { code?: string }).code).toBe('ERR_NATIVE_SHAPE_MISMATCH');
      expect(nativeCode(() => LinearKernel.adopt(shared.token, 8, 2, Activation.sigmoid))).toBe('ERR_NATIVE_SHAPE_MISMATCH');
    } finally {
      releaseShared(shared);
      await original.dispose();
    }
  });

  it('frees the weights when the last kernel is disposed and the token forgotten', () => {
    const live = linearSharedLive();
    const k = new LinearKernel(randomF32(20, 1), new Float32Array(0), 10, 2, Activation.none);
    expect(linearSharedLive()).toBe(live); // not shared yet
    const t1 = k.share();
    const t2 = k.share();
    expect(t2).not.toBe(t1);
    expect(linearSharedLive()).toBe(live + 1); // one model, however many tokens
    const a = LinearKernel.adopt(t1, 10, 2, Activation.none);
    k.dispose();
    expect(forgetSharedLinear(t1)).toBe(true);
    expect(forgetSharedLinear(t1)).toBe(false);
    expect(forgetSharedLinear(t2)).toBe(true);
    expect(linearSharedLive()).toBe(live + 1); // `a` holds it
    const x = randomF32(10, 5);
    const out = new Float32Array(2);
    a.run(x, 1, out);
    a.dispose();
    expect(linearSharedLive()).toBe(live);
    expect(nativeCode(() => a.share())).toBe('ERR_NATIVE_INVALID_ARGUMENT');
  });
});
