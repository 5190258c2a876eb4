/** Temporary model repositories with versions written on the fly. */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundledModels, projectRoot } from '../../src/paths.js';
import { writeModelVersion } from '../../src/repository/write.js';

export async function tempRepo(withBundled = false): Promise<{ root: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), 'sluice-repo-'));
  if (withBundled) await cp(bundledModels, root, { recursive: true });
  return { root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export const FEATURES = 100;

/** The demo-logistic weights: w[i] = ((i % 7) - 3) / 10, bias 0.25. */
export function demoWeights(): number[] {
  return Array.from({ length: FEATURES }, (_, i) => ((i % 7) - 3) / 10);
}

/** A logistic (or linear) version whose weights are scaled by `scale`, so each version differs. */
export async function writeLinear(
  root: string,
  name: string,
  version: string,
  opts: { kind?: 'linear' | 'logistic'; scale?: number; bias?: number; dispatch?: 'inline' | 'pool'; weights?: number[][]; features?: number; maxBatch?: number; delayUs?: number; queue?: number } = {},
): Promise<void> {
  const features = opts.features ?? FEATURES;
  const scale = opts.scale ?? 1;
  const weights = opts.weights ?? [demoWeights().slice(0, features).map((w) => w * scale)];
  const outputs = weights.length;
  await writeModelVersion(root, {
    name,
    version,
    kind: opts.kind ?? 'logistic',
    signature: {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, features] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, outputs] }],
    },
    max_batch_size: opts.maxBatch ?? 1024,
    dynamic_batching: { max_queue_delay_us: opts.delayUs ?? 0, max_queue_size: opts.queue ?? 4096 },
    ...(opts.dispatch ? { dispatch: opts.dispatch } : {}),
  }, 'weights.json', Buffer.from(JSON.stringify({ weights, bias: new Array(outputs).fill(opts.bias ?? 0.25) })));
}

/** A test-only fixture model (see src/worker/runtimes/fixture.ts). */
export async function writeFixture(
  root: string,
  name: string,
  version: string,
  parameters: Record<string, unknown>,
  opts: { cols?: number; dispatch?: 'inline' | 'pool'; maxBatch?: number; delayUs?: number; queue?: number; policies?: Record<string, unknown> } = {},
): Promise<void> {
  const cols = opts.cols ?? 4;
  const echo = parameters.op === 'echo';
  await writeModelVersion(root, {
    name,
    version,
    kind: 'fixture',
    signature: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, cols] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, echo ? cols : 1] }],
    },
    max_batch_size: opts.maxBatch ?? 64,
    dynamic_batching: { max_queue_delay_us: opts.delayUs ?? 0, max_queue_size: opts.queue ?? 1024 },
    dispatch: opts.dispatch ?? 'pool',
    parameters,
    ...opts.policies,
  }, 'fixture.json', Buffer.from('{}'));
}

/** Copies an ONNX test fixture into the repository as a model version. */
export async function writeOnnx(
  root: string,
  name: string,
  version: string,
  fixture: string,
  signature: unknown,
  opts: { dispatch?: 'inline' | 'pool'; maxBatch?: number; payload?: Uint8Array } = {},
): Promise<void> {
  const bytes = opts.payload ?? (await readFile(path.join(projectRoot, 'test/fixtures/onnx', fixture)));
  await writeModelVersion(root, {
    name,
    version,
    kind: 'onnx',
    signature,
    max_batch_size: opts.maxBatch ?? 256,
    ...(opts.dispatch ? { dispatch: opts.dispatch } : {}),
  }, 'model.onnx', bytes);
}

/** sigmoid(x . w + b) in float64: what a logistic version computes. */
export function logistic(x: ArrayLike<number>, w: ArrayLike<number>, b: number): number {
  let z = b;
  for (let i = 0; i < w.length; i++) z += x[i]! * w[i]!;
  return 1 / (1 + Math.exp(-z));
}
