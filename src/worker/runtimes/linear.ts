/**
 * `linear` and `logistic` models: one FP32 input [-1, F], one FP32 output [-1, O], weights O x F
 * plus bias O, computed by the native GEMV kernel. Logistic applies a sigmoid (O = 1) or a
 * softmax over the O classes.
 */
import { SluiceError } from '../../errors.js';
import type { Manifest } from '../../model/manifest.js';
import { F32_MAX, type TypedArray } from '../../model/tensor.js';
import { Activation, forgetSharedLinear, LinearKernel } from '../../native.js';
import type { BatchTensor, Runtime, SharedLinear } from './types.js';

function fail(m: Manifest, what: string): SluiceError {
  return new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: ${what}`);
}

/** Checks a linear/logistic signature (input FP32 [-1, F], output FP32 [-1, O]); returns F and O. */
function linearSignature(m: Manifest): { features: number; outputs: number } {
  const { inputs, outputs } = m.signature;
  const inp = inputs[0];
  const out = outputs[0];
  if (inputs.length !== 1 || outputs.length !== 1 || !inp || !out) throw fail(m, `${m.kind} models take one input and give one output`);
  if (inp.datatype !== 'FP32' || out.datatype !== 'FP32') throw fail(m, `${m.kind} models use FP32 tensors`);
  if (inp.shape.length !== 2 || out.shape.length !== 2 || inp.shape[0] !== -1 || out.shape[0] !== -1) {
    throw fail(m, `${m.kind} signatures are input [-1, F] and output [-1, O]`);
  }
  const features = inp.shape[1]!;
  const nOut = out.shape[1]!;
  if (features < 1 || nOut < 1) throw fail(m, 'F and O must be fixed positive sizes');
  return { features, outputs: nOut };
}

/** Reads `{"weights": [[...], ...], "bias": [...]}` and checks it against the signature. */
export function parseLinearPayload(m: Manifest, payload: Uint8Array): { w: Float32Array; bias: Float32Array; features: number; outputs: number } {
  const { features, outputs: nOut } = linearSignature(m);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'));
  } catch {
    throw fail(m, 'payload is not valid JSON');
  }
  const { weights, bias } = (doc ?? {}) as { weights?: unknown; bias?: unknown };
  if (!Array.isArray(weights) || weights.length !== nOut) throw fail(m, `weights must be ${nOut} rows`);
  const w = new Float32Array(nOut * features);
  weights.forEach((row: unknown, o) => {
    if (!Array.isArray(row) || row.length !== features) throw fail(m, `weights[${o}] must have ${features} values`);
    row.forEach((v: unknown, f) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > F32_MAX) throw fail(m, `weights[${o}][${f}] is not a finite float32`);
      w[o * features + f] = v;
    });
  });
  const b = new Float32Array(nOut);
  if (bias !== undefined) {
    if (!Array.isArray(bias) || bias.length !== nOut) throw fail(m, `bias must have ${nOut} values`);
    bias.forEach((v: unknown, o) => {
      if (typeof v !== 'number' || !Number.isFinite(v) || Math.abs(v) > F32_MAX) throw fail(m, `bias[${o}] is not a finite float32`);
      b[o] = v;
    });
  }
  return { w, bias: b, features, outputs: nOut };
}

function activationOf(m: Manifest, outputs: number): number {
  return m.kind === 'logistic' ? (outputs === 1 ? Activation.sigmoid : Activation.softmax) : Activation.none;
}

export function loadLinear(m: Manifest, payload: Uint8Array): Runtime {
  const { w, bias, features, outputs } = parseLinearPayload(m, payload);
  const act = activationOf(m, outputs);
  return linearRuntime(m, new LinearKernel(w, bias, features, outputs, act), act);
}

/**
 * The runtime of `m` on weights another thread loaded and shared (`Runtime.share`): no payload
 * to parse and no copy of the weights. A description that does not fit `m`'s signature, or a
 * token no longer shared, is MODEL_LOAD_FAILED (the addon's error, with its code such as
 * ERR_NATIVE_UNKNOWN_TOKEN, is the `cause`).
 */
export function adoptLinear(m: Manifest, s: SharedLinear): Runtime {
  const { features, outputs } = linearSignature(m);
  const act = activationOf(m, outputs);
  if (s.cols !== features || s.outputs !== outputs || s.activation !== act) {
    throw fail(m, `the shared weights are ${s.outputs} x ${s.cols} with activation ${s.activation}; the manifest needs ${outputs} x ${features} with activation ${act}`);
  }
  let kernel: LinearKernel;
  try {
    kernel = LinearKernel.adopt(s.token, s.cols, s.outputs, s.activation);
  } catch (e) {
    throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: cannot use the shared weights: ${(e as Error).message}`, { cause: e });
  }
  return linearRuntime(m, kernel, act);
}

/** Ends the sharing of `s` (see releaseShared in index.ts). */
export function releaseSharedLinear(s: SharedLinear): void {
  forgetSharedLinear(s.token);
}

function linearRuntime(m: Manifest, kernel: LinearKernel, activation: number): Runtime {
  const { cols, outputs } = kernel;
  // The kernel writes into this long-lived buffer, and results are copied out with slice().
  // Handing the addon a freshly allocated small Float32Array instead costs ~0.6 us per call:
  // V8 keeps arrays of <= 64 bytes on its heap and must move them off-heap for native code.
  const maxRows = Math.max(1, m.batching.maxBatchSize);
  const scratch = new Float32Array(new ArrayBuffer(maxRows * outputs * 4));
  const views: Float32Array[] = [];
  const scratchFor = (rows: number): Float32Array => (views[rows] ??= scratch.subarray(0, rows * outputs));
  return {
    manifest: m,
    run(inputs: readonly BatchTensor[], rows: number, into?: readonly TypedArray[]): BatchTensor[] {
      const x = inputs[0]!.data as Float32Array;
      const target = into?.[0] as Float32Array | undefined;
      if (target) {
        kernel.run(x, rows, target);
        return [{ data: target, shape: [rows, outputs] }];
      }
      const out = rows <= maxRows ? scratchFor(rows) : new Float32Array(new ArrayBuffer(rows * outputs * 4));
      kernel.run(x, rows, out);
      return [{ data: out.slice(), shape: [rows, outputs] }];
    },
    async dispose() {
      kernel.dispose();
    },
    share(): SharedLinear {
      return { kind: 'linear', token: kernel.share(), cols, outputs, activation };
    },
  };
}
