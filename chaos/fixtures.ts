/**
 * Model repositories for the scenarios, written on the fly: logistic versions whose answers say
 * which version computed them (each version has its own weight scale and bias), and the
 * test-only `fixture` kind (slow, crashing) from src/worker/runtimes/fixture.ts.
 */
import { sha256Hex } from '../src/artifacts/integrity.js';
import { writeModelVersion } from '../src/repository/write.js';

export const FEATURES = 16;

/** Version v's weights: w[i] = ((i % 7) - 3) / 10 * v; its bias: v / 4. */
export function versionParams(v: number): { weights: number[]; bias: number } {
  return { weights: Array.from({ length: FEATURES }, (_, i) => (((i % 7) - 3) / 10) * v), bias: v / 4 };
}

type LogisticOptions = { maxBatch?: number; queue?: number; dispatch?: 'inline' | 'pool' };

function logisticManifest(name: string, version: number, opts: LogisticOptions) {
  return {
    name,
    version: String(version),
    kind: 'logistic',
    signature: {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, FEATURES] }],
      outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    },
    max_batch_size: opts.maxBatch ?? 256,
    dynamic_batching: { max_queue_delay_us: 0, max_queue_size: opts.queue ?? 4096 },
    ...(opts.dispatch ? { dispatch: opts.dispatch } : {}),
  };
}

/** Version v's payload; `padBytes` of trailing whitespace make it as large as a test needs (still valid JSON). */
function logisticPayload(version: number, padBytes = 0): Buffer {
  const { weights, bias } = versionParams(version);
  return Buffer.concat([Buffer.from(JSON.stringify({ weights: [weights], bias: [bias] })), Buffer.alloc(padBytes, 0x20)]);
}

export async function writeLogistic(root: string, name: string, version: number, opts: LogisticOptions = {}): Promise<void> {
  await writeModelVersion(root, logisticManifest(name, version, opts), 'weights.json', logisticPayload(version));
}

/** The body and headers of an admin register call (POST /v1/admin/models/{m}/versions) for version v. */
export function logisticUpload(name: string, version: number, padBytes = 0, opts: LogisticOptions = {}): { body: Buffer; headers: Record<string, string> } {
  const payload = logisticPayload(version, padBytes);
  const head = Buffer.from(JSON.stringify({ manifest: { ...logisticManifest(name, version, opts), payload: { file: 'weights.json', sha256: sha256Hex(payload) } } }));
  return { body: Buffer.concat([head, payload]), headers: { 'content-type': 'application/octet-stream', 'register-header-length': String(head.byteLength) } };
}

/** What version v answers for input x (float64; the server computes in float32). */
export function expectedLogistic(x: number[], version: number): number {
  const { weights, bias } = versionParams(version);
  let z = bias;
  for (let i = 0; i < weights.length; i++) z += x[i]! * weights[i]!;
  return 1 / (1 + Math.exp(-z));
}

/** A test-only fixture model: parameters as in src/worker/runtimes/fixture.ts (one FP32 input x [-1, 4]). */
export async function writeFixture(root: string, name: string, version: number, parameters: Record<string, unknown>, opts: { maxBatch?: number; queue?: number } = {}): Promise<void> {
  await writeModelVersion(root, {
    name,
    version: String(version),
    kind: 'fixture',
    signature: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
    },
    max_batch_size: opts.maxBatch ?? 1,
    dynamic_batching: { max_queue_delay_us: 0, max_queue_size: opts.queue ?? 1024 },
    dispatch: 'pool',
    parameters,
  }, 'fixture.json', Buffer.from('{}'));
}

/** Seeded inputs in [-1, 1) for the logistic versions. */
export function inputs(count: number): number[][] {
  let s = 12345;
  const rnd = () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
  return Array.from({ length: count }, () => Array.from({ length: FEATURES }, () => Math.fround(rnd() * 2 - 1)));
}

/** Complete HTTP/1.1 infer requests (JSON) for the load generator, one per row. */
export function inferRequests(url: string, model: string, inputName: string, rows: number[][], headers: Record<string, string> = {}): Buffer[] {
  const u = new URL(url);
  return rows.map((row) => {
    const body = Buffer.from(JSON.stringify({ inputs: [{ name: inputName, datatype: 'FP32', shape: [1, row.length], data: row }] }));
    const head = [
      `POST /v2/models/${encodeURIComponent(model)}/infer HTTP/1.1`,
      `Host: ${u.host}`,
      'Content-Type: application/json',
      `Content-Length: ${body.byteLength}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      '',
      '',
    ].join('\r\n');
    return Buffer.concat([Buffer.from(head), body]);
  });
}
