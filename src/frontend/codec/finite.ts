/**
 * NaN and infinities in binary tensors (HTTP binary extension, gRPC raw_input_contents,
 * WebSocket msgpack frames) are refused exactly as in JSON or typed contents: the same
 * INVALID_TENSOR_VALUE, naming the first bad element. The scan is native (SIMD; see
 * native/src/kernels/finite.rs): raw float tensors can be large, and it runs on every request.
 */
import { SluiceError } from '../../errors.js';
import type { Datatype, TypedArray } from '../../model/tensor.js';
import { firstNonFiniteF16, firstNonFiniteF32, firstNonFiniteF64 } from '../../native.js';

/** How a non-finite FP16 bit pattern reads (exponent bits all ones). */
function halfName(h: number): string {
  if (h & 0x3ff) return 'NaN';
  return h & 0x8000 ? '-Infinity' : 'Infinity';
}

/** Throws INVALID_TENSOR_VALUE when a float tensor holds a NaN or an infinity; other types pass. */
export function checkFinite(name: string, dt: Datatype, data: TypedArray): void {
  let at: number;
  if (dt === 'FP32') at = firstNonFiniteF32(data as Float32Array);
  else if (dt === 'FP64') at = firstNonFiniteF64(data as Float64Array);
  else if (dt === 'FP16') at = firstNonFiniteF16(data as Uint16Array);
  else return;
  if (at < 0) return;
  const shown = dt === 'FP16' ? halfName((data as Uint16Array)[at]!) : String(data[at]);
  throw new SluiceError('INVALID_TENSOR_VALUE', `input ${name} element ${at} (${shown}) is not a valid ${dt} value`);
}
