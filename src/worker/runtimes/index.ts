/** Builds the runtime for a model kind and smoke-tests it before it may serve. */
import { SluiceError, toSluiceError } from '../../errors.js';
import type { Manifest, TensorSpec } from '../../model/manifest.js';
import { arrayClassOf, type Tensor, type TypedArray } from '../../model/tensor.js';
import { loadFixture } from './fixture.js';
import { adoptLinear, loadLinear, releaseSharedLinear } from './linear.js';
import { loadOnnx } from './onnx.js';
import { loadBandit } from './bandit.js';
import { loadOnlineLogistic } from './online-logistic.js';
import type { LoadOptions, Runtime, SharedRuntime } from './types.js';

export type { BatchTensor, LoadOptions, Runtime, SharedLinear, SharedRuntime } from './types.js';

/**
 * Creates the runtime of `m` from its already-verified payload bytes, or, with `opts.shared`,
 * from the state another thread shared (`Runtime.share`), without reading the payload.
 */
export async function loadRuntime(m: Manifest, payload: Uint8Array, opts: LoadOptions): Promise<Runtime> {
  if (opts.shared) {
    if ((m.kind === 'linear' || m.kind === 'logistic') && opts.shared.kind === 'linear') return adoptLinear(m, opts.shared);
    throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: a ${m.kind} model cannot be built from shared ${opts.shared.kind} state`);
  }
  switch (m.kind) {
    case 'linear':
    case 'logistic':
      return loadLinear(m, payload);
    case 'onnx':
      return loadOnnx(m, payload);
    case 'fixture':
      return loadFixture(m, opts);
    case 'linucb':
    case 'thompson':
    case 'epsilon-greedy':
      return loadBandit(m, payload, opts.learned);
    case 'online-logistic':
      return loadOnlineLogistic(m, payload, opts.learned);
  }
}

/**
 * Ends the sharing of `s`: no thread can build from it any more. Runtimes already built from it
 * are unaffected, and the state is freed with the last of them. Idempotent.
 */
export function releaseShared(s: SharedRuntime): void {
  switch (s.kind) {
    case 'linear':
      releaseSharedLinear(s);
      break;
  }
}

const SMOKE_ROWS = 2;

/** Deterministic smoke inputs: small values in [-1, 1] (floats) or 0/1 (integers, bools). */
export function smokeInputs(m: Manifest): { inputs: Tensor[]; rows: number } {
  const batched = m.batching.maxBatchSize > 0;
  const rows = batched ? Math.min(SMOKE_ROWS, m.batching.maxBatchSize) : 1;
  const inputs = m.signature.inputs.map((spec): Tensor => {
    const shape = spec.shape.map((d, i) => (d === -1 ? (i === 0 && batched ? rows : 1) : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const Ctor = arrayClassOf(spec.datatype)!;
    const data = new Ctor(n);
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
      for (let i = 0; i < n; i++) data[i] = BigInt(i % 2);
    } else if (spec.datatype === 'FP32' || spec.datatype === 'FP64') {
      for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898 + 1) * 0.999;
    } else {
      for (let i = 0; i < n; i++) data[i] = i % 2;
    }
    return { name: spec.name, datatype: spec.datatype, shape, data };
  });
  return { inputs, rows };
}

function isFloat(spec: TensorSpec): boolean {
  return spec.datatype === 'FP32' || spec.datatype === 'FP64';
}

/**
 * Runs the smoke inputs and checks the outputs: one per signature output, the right array type,
 * a shape that fits the signature, and only finite values. Throws MODEL_VALIDATION_FAILED.
 */
export async function validateRuntime(rt: Runtime): Promise<void> {
  const m = rt.manifest;
  const { inputs, rows } = smokeInputs(m);
  const where = `${m.name}@${m.version}`;
  let outs;
  try {
    outs = await rt.run(inputs, rows);
  } catch (e) {
    const err = toSluiceError(e, 'MODEL_VALIDATION_FAILED', 'the smoke test threw');
    throw new SluiceError('MODEL_VALIDATION_FAILED', `${where}: smoke test failed: ${err.message}`);
  }
  if (outs.length !== m.signature.outputs.length) {
    throw new SluiceError('MODEL_VALIDATION_FAILED', `${where}: smoke test gave ${outs.length} outputs, signature has ${m.signature.outputs.length}`);
  }
  m.signature.outputs.forEach((spec, i) => {
    const o = outs[i]!;
    const Ctor = arrayClassOf(spec.datatype)!;
    if (!(o.data instanceof Ctor)) {
      throw new SluiceError('MODEL_VALIDATION_FAILED', `${where}: output ${spec.name} is not ${spec.datatype}`);
    }
    const fits = o.shape.length === spec.shape.length && spec.shape.every((d, j) => d === -1 || d === o.shape[j]);
    const count = o.shape.reduce((a, b) => a * b, 1);
    if (!fits || count !== o.data.length) {
      throw new SluiceError('MODEL_VALIDATION_FAILED', `${where}: output ${spec.name} has shape [${o.shape}], signature says [${spec.shape}]`);
    }
    if (isFloat(spec) && !allFinite(o.data)) {
      throw new SluiceError('MODEL_VALIDATION_FAILED', `${where}: output ${spec.name} has non-finite values on the smoke inputs`);
    }
  });
}

function allFinite(a: TypedArray): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i] as number)) return false;
  return true;
}
