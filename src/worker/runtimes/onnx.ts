/**
 * `onnx` models on onnxruntime-node. Each session is single-threaded (intra/inter-op 1): Sluice
 * gets parallelism from its worker pool, and on a small machine ORT's own thread pool would
 * fight the I/O thread for cores. `session.run` computes synchronously on the calling thread.
 */
import { SluiceError } from '../../errors.js';
import type { Manifest } from '../../model/manifest.js';
import type { Datatype, TypedArray } from '../../model/tensor.js';
import type { BatchTensor, Runtime } from './types.js';

type Ort = typeof import('onnxruntime-node');

/** OIP datatype -> ORT tensor type. */
const ORT_TYPE: Partial<Record<Datatype, 'float32'>> = {
  // Typed as 'float32' only to pick one Tensor constructor overload; ORT checks the data at run.
  FP32: 'float32', FP64: 'float64', FP16: 'float16', INT8: 'int8', UINT8: 'uint8', INT16: 'int16',
  UINT16: 'uint16', INT32: 'int32', UINT32: 'uint32', INT64: 'int64', UINT64: 'uint64', BOOL: 'bool',
} as unknown as Partial<Record<Datatype, 'float32'>>;

let ortModule: Promise<Ort> | undefined;
/** Loaded on first use: the native library costs ~100 ms and memory nobody without ONNX needs. */
function ort(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node').then((m) => ((m as { default?: Ort }).default ?? m) as Ort);
  return ortModule;
}

export async function loadOnnx(m: Manifest, payload: Uint8Array): Promise<Runtime> {
  const rt = await ort();
  let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
  try {
    // ORT reads the bytes during create; a copy keeps a SharedArrayBuffer-backed payload out of it.
    session = await rt.InferenceSession.create(Uint8Array.from(payload), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: onnxruntime could not load the payload (${(e as Error).message.slice(0, 200)})`);
  }
  const wantIn = m.signature.inputs.map((t) => t.name).sort();
  const wantOut = m.signature.outputs.map((t) => t.name);
  const haveIn = [...session.inputNames].sort();
  const missingOut = wantOut.filter((n) => !session.outputNames.includes(n));
  if (wantIn.join('\0') !== haveIn.join('\0') || missingOut.length > 0) {
    await session.release();
    throw new SluiceError(
      'MODEL_LOAD_FAILED',
      `${m.name}@${m.version}: signature does not match the ONNX graph (graph inputs [${haveIn}], outputs [${session.outputNames}])`,
    );
  }
  for (const t of [...m.signature.inputs, ...m.signature.outputs]) {
    if (!ORT_TYPE[t.datatype]) {
      await session.release();
      throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: datatype ${t.datatype} is not supported by the onnx runtime`);
    }
  }
  const inSpecs = m.signature.inputs;
  const outNames = wantOut;
  return {
    manifest: m,
    async run(inputs: readonly BatchTensor[], _rows: number, into?: readonly TypedArray[]): Promise<BatchTensor[]> {
      const feeds: Record<string, InstanceType<Ort['Tensor']>> = {};
      for (let i = 0; i < inSpecs.length; i++) {
        const spec = inSpecs[i]!;
        const t = inputs[i]!;
        // ORT rejects typed arrays over a SharedArrayBuffer ("Invalid argument"), so batches read
        // from the arena are copied once into private memory here.
        const data = t.data.buffer instanceof SharedArrayBuffer ? t.data.slice() : t.data;
        feeds[spec.name] = new rt.Tensor(ORT_TYPE[spec.datatype]!, data as Float32Array, t.shape);
      }
      const results = await session.run(feeds, outNames);
      return outNames.map((name, i) => {
        const r = results[name]!;
        const data = r.data as TypedArray;
        const target = into?.[i];
        if (target) {
          if (target.length !== data.length) {
            throw new SluiceError('MODEL_ERROR', `output ${name} has ${data.length} elements, expected ${target.length}`);
          }
          (target as Float32Array).set(data as Float32Array);
          return { data: target, shape: [...r.dims] };
        }
        return { data, shape: [...r.dims] };
      });
    },
    async dispose() {
      await session.release();
    },
  };
}
