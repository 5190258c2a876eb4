/**
 * Checking requests against a model signature, and the fixed per-row layout that pooled
 * dispatch needs. Runs on every request, so it avoids allocation beyond the ordered input list.
 */
import { SluiceError } from '../errors.js';
import type { Manifest, Signature, TensorSpec } from './manifest.js';
import { arrayClassOf, bytesPerElement, elementCount, holds, type Tensor } from './tensor.js';

export interface CheckedInputs {
  /** Inputs in signature order. */
  ordered: Tensor[];
  /** Batch rows (the first dimension) when the model batches, else 1. */
  rows: number;
}

function describeArray(data: unknown): string {
  return (data as { constructor?: { name?: string } })?.constructor?.name ?? typeof data;
}

function checkOne(spec: TensorSpec, t: Tensor, batched: boolean): void {
  if (t.datatype !== spec.datatype) {
    throw new SluiceError('DATATYPE_MISMATCH', `input ${spec.name} must be ${spec.datatype}, got ${t.datatype}`);
  }
  if (!holds(spec.datatype, t.data)) {
    throw new SluiceError('DATATYPE_MISMATCH', `input ${spec.name} data is ${describeArray(t.data)}, expected ${arrayClassOf(spec.datatype)?.name}`);
  }
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.length !== spec.shape.length) {
    throw new SluiceError('SHAPE_MISMATCH', `input ${spec.name} must have ${spec.shape.length} dimensions [${spec.shape}], got [${shape}]`);
  }
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i]!;
    const want = spec.shape[i]!;
    if (!Number.isInteger(d) || d < 0 || (want !== -1 && d !== want)) {
      throw new SluiceError('SHAPE_MISMATCH', `input ${spec.name} has shape [${shape}], the model takes [${spec.shape}]`);
    }
  }
  if (batched && shape[0] === 0) {
    throw new SluiceError('SHAPE_MISMATCH', `input ${spec.name} has an empty batch`);
  }
  const n = elementCount(shape);
  if (n !== t.data.length) {
    throw new SluiceError('SHAPE_MISMATCH', `input ${spec.name} has shape [${shape}] (${n} elements) but ${t.data.length} elements of data`);
  }
}

/** Checks `inputs` against the manifest's signature and batch limit; throws coded errors. */
export function checkInputs(m: Manifest, inputs: readonly Tensor[]): CheckedInputs {
  const specs = m.signature.inputs;
  const batched = m.batching.maxBatchSize > 0;
  if (!Array.isArray(inputs)) throw new SluiceError('INVALID_ARGUMENT', 'inputs must be an array');
  const ordered = new Array<Tensor>(specs.length);
  let rows = -1;
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    let found: Tensor | undefined;
    for (const t of inputs) {
      if (t.name === spec.name) {
        if (found) throw new SluiceError('INPUT_UNKNOWN', `input ${spec.name} is sent more than once`);
        found = t;
      }
    }
    if (!found) throw new SluiceError('INPUT_MISSING', `model ${m.name} requires input ${spec.name}`);
    checkOne(spec, found, batched);
    if (batched) {
      const r = found.shape[0]!;
      if (rows === -1) rows = r;
      else if (r !== rows) throw new SluiceError('SHAPE_MISMATCH', `inputs disagree on the batch size (${rows} vs ${r})`);
    }
    ordered[i] = found;
  }
  if (inputs.length !== specs.length) {
    const extra = inputs.find((t) => !specs.some((s) => s.name === t.name));
    throw new SluiceError('INPUT_UNKNOWN', `model ${m.name} has no input ${extra ? String(extra.name) : '(duplicate)'}`);
  }
  if (!batched) return { ordered, rows: 1 };
  if (rows > m.batching.maxBatchSize) {
    throw new SluiceError('BATCH_TOO_LARGE', `batch of ${rows} rows exceeds max_batch_size ${m.batching.maxBatchSize} of model ${m.name}`);
  }
  return { ordered, rows };
}

/** Indices of the requested outputs (all when none requested); throws OUTPUT_UNKNOWN. */
export function selectOutputs(sig: Signature, requested: readonly string[] | undefined): number[] | undefined {
  if (requested === undefined || requested.length === 0) return undefined;
  return requested.map((name) => {
    const i = sig.outputs.findIndex((o) => o.name === name);
    if (i < 0) throw new SluiceError('OUTPUT_UNKNOWN', `model has no output ${String(name)}`);
    return i;
  });
}

export interface TensorLayout {
  spec: TensorSpec;
  /** Elements per batch row (product of the non-batch dimensions). */
  rowElements: number;
  bytesPerElement: number;
}

/** Per-row sizes of every input and output: the arena slot layout of a pooled model. */
export interface RowLayout {
  inputs: TensorLayout[];
  outputs: TensorLayout[];
}

/**
 * The row layout of a batched signature, or a reason it has none (a variable non-batch
 * dimension means rows have no fixed size, so the model cannot use arena slots).
 */
export function rowLayout(m: Manifest): RowLayout | string {
  if (m.batching.maxBatchSize === 0) return 'max_batch_size is 0 (no batch dimension)';
  const one = (spec: TensorSpec): TensorLayout | string => {
    const rest = spec.shape.slice(1);
    if (rest.some((d) => d < 0)) return `tensor ${spec.name} has a variable non-batch dimension`;
    return { spec, rowElements: elementCount(rest), bytesPerElement: bytesPerElement(spec.datatype) };
  };
  const inputs = m.signature.inputs.map(one);
  const outputs = m.signature.outputs.map(one);
  const reason = [...inputs, ...outputs].find((x): x is string => typeof x === 'string');
  if (reason) return reason;
  return { inputs: inputs as TensorLayout[], outputs: outputs as TensorLayout[] };
}
