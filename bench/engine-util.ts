/** Helpers for in-process engine benchmarks. */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundledModels } from '../src/paths.js';
import type { Tensor } from '../src/model/tensor.js';
import type { Engine } from '../src/service/engine.js';
import type { InferRequest } from '../src/service/types.js';
import { check } from './util.js';

export const FEATURES = 100;
export const W = Array.from({ length: FEATURES }, (_, i) => ((i % 7) - 3) / 10);

/** sigmoid(x . w + 0.25): demo-logistic's documented answer. */
export function demoAnswer(x: ArrayLike<number>, offset = 0): number {
  let z = 0.25;
  for (let i = 0; i < FEATURES; i++) z += x[offset + i]! * W[i]!;
  return 1 / (1 + Math.exp(-z));
}

export function features(rows: number, seed: number): Tensor {
  const data = new Float32Array(rows * FEATURES);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return { name: 'features', datatype: 'FP32', shape: [rows, FEATURES], data };
}

/**
 * A copy of the bundled repository plus variants of the demo models with an explicit dispatch
 * (`demo-logistic-pool`, `demo-onnx-inline`), so both paths run the same model side by side.
 */
export async function benchRepo(): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), 'sluice-bench-'));
  await cp(bundledModels, root, { recursive: true });
  for (const [from, to, dispatch] of [['demo-logistic', 'demo-logistic-pool', 'pool'], ['demo-onnx', 'demo-onnx-inline', 'inline']] as const) {
    await cp(path.join(root, from), path.join(root, to), { recursive: true });
    const file = path.join(root, to, '1', 'model.json');
    const m = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...m, name: to, dispatch }));
  }
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export interface LoopResult {
  requests: number;
  predictions: number;
  seconds: number;
  failures: number;
}

/**
 * Closed loop: keeps `concurrency` requests in flight for `ms`, cycling through `reqs`
 * (pre-built so request construction is not measured).
 */
export async function closedLoop(engine: Engine, reqs: InferRequest[], concurrency: number, ms: number): Promise<LoopResult> {
  let requests = 0;
  let predictions = 0;
  let failures = 0;
  let i = 0;
  const t0 = performance.now();
  const until = t0 + ms;
  const lane = async () => {
    while (performance.now() < until) {
      const req = reqs[i++ % reqs.length]!;
      try {
        await engine.infer(req);
        requests++;
        predictions += req.inputs[0]!.shape[0]!;
      } catch {
        failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return { requests, predictions, seconds: (performance.now() - t0) / 1000, failures };
}

/** Asserts that the server at `url` answers demo-logistic's formula over HTTP (a bench checks this before timing). */
export async function checkDemoLogisticOverHttp(url: string): Promise<void> {
  const x = features(1, 23).data as Float32Array;
  const res = await fetch(`${url}/v2/models/demo-logistic/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(x) }] }),
  });
  const got = ((await res.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data[0]!;
  check(Math.abs(got - demoAnswer(x)) < 1e-6, `${url} answered ${got}, expected ${demoAnswer(x)}`);
}
