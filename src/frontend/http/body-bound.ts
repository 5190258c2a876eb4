/**
 * The largest body an inference request to a model can need, from its signature and
 * max_batch_size: a request larger than that is refused from its Content-Length, before any of
 * it is read or parsed (a 14 MB JSON body of 4 million numbers for a model that takes at most
 * 1,024 rows of 100 cost a second of parsing, on the one thread every client shares, before
 * its BATCH_TOO_LARGE). Bodies without a Content-Length are cut at the same bound.
 */
import type { Service } from '../../service/service.js';
import type { TensorSpec } from '../../model/manifest.js';

/**
 * Bytes allowed per tensor element: a JSON number in any spelling a client is likely to use
 * ("-1.2345678901234567e-308", indentation, separators), and more than any binary element.
 */
export const BYTES_PER_ELEMENT = 48;
/** Room for everything but the tensor data: names, ids, parameters, outputs. */
export const BODY_SLACK = 64 * 1024;

/** Bounds by signature (the engine hands out one inputs array per loaded version). */
const bounds = new WeakMap<readonly TensorSpec[], number>();

/**
 * The bound for `model` (and version), or undefined when the model has no fixed bound (a
 * variable non-batch dimension, BYTES inputs) or is not loaded (the request then gets its
 * MODEL_NOT_FOUND from the usual path).
 */
export function bodyBound(engine: Service, model: string, version: string | undefined): number | undefined {
  let inputs: readonly TensorSpec[];
  try {
    inputs = engine.inputSpecs(model, version);
  } catch {
    return undefined;
  }
  const known = bounds.get(inputs);
  if (known !== undefined) return Number.isFinite(known) ? known : undefined;
  const maxBatch = engine.modelConfig(model, version).maxBatchSize;
  const rows = Math.max(1, maxBatch);
  const batched = maxBatch > 0;
  let elements = 0;
  for (const spec of inputs) {
    if (spec.datatype === 'BYTES') elements = Infinity;
    let perRow = 1;
    for (const d of batched ? spec.shape.slice(1) : spec.shape) perRow *= d < 0 ? Infinity : d;
    elements += perRow;
  }
  const bound = rows * elements * BYTES_PER_ELEMENT + BODY_SLACK;
  bounds.set(inputs, bound);
  return Number.isFinite(bound) ? bound : undefined;
}
