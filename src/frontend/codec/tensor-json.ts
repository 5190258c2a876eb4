/**
 * Tensor data between JSON and typed arrays, with every element checked: JSON numbers that do
 * not fit the datatype (NaN and infinities cannot be JSON, but 1e400 parses to Infinity;
 * 3.5e38 overflows FP32; 1.5 is not an INT32) are refused with INVALID_TENSOR_VALUE rather than
 * silently rounded or wrapped.
 */
import { SluiceError } from '../../errors.js';
import { arrayClassOf, elementCount, F32_MAX, type Datatype, type TypedArray } from '../../model/tensor.js';
import type { NativeNumbers } from './safe-json.js';

const F16_MAX = 65504;

interface IntRange {
  min: number;
  max: number;
}

const INT_RANGES: Partial<Record<Datatype, IntRange>> = {
  INT8: { min: -128, max: 127 },
  INT16: { min: -32768, max: 32767 },
  INT32: { min: -2147483648, max: 2147483647 },
  UINT8: { min: 0, max: 255 },
  UINT16: { min: 0, max: 65535 },
  UINT32: { min: 0, max: 4294967295 },
  // 64-bit integers travel as JSON numbers, so only the exactly representable range is accepted.
  INT64: { min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER },
  UINT64: { min: 0, max: Number.MAX_SAFE_INTEGER },
};

function bad(name: string, i: number, v: unknown, dt: Datatype): SluiceError {
  const shown = typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v;
  return new SluiceError('INVALID_TENSOR_VALUE', `input ${name} element ${i} (${shown}) is not a valid ${dt} value`);
}

/** One float32 and its bits, reused by every conversion (no arrays per element). */
const F32_SCRATCH = new Float32Array(1);
const F32_BITS = new Uint32Array(F32_SCRATCH.buffer);

/** float32 -> IEEE half bits (round to nearest even). */
function toHalfBits(v: number): number {
  F32_SCRATCH[0] = v;
  const x = F32_BITS[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

const noNumbers: NativeNumbers = () => undefined;

/**
 * Walks nested arrays in row-major order, checking that they have exactly `shape`. `numbers`
 * resolves the placeholders parseInferJson left for natively parsed arrays of numbers: each is
 * treated exactly as the JSON array it stands for, so results and errors are the same.
 */
/** A JSON array, or a placeholder for a natively parsed one. */
function isArrayOrNumbers(v: unknown, numbers: NativeNumbers): boolean {
  return Array.isArray(v) || numbers(v) !== undefined;
}

function flatten(data: unknown, shape: readonly number[], name: string, numbers: NativeNumbers): ArrayLike<unknown> {
  const n = elementCount(shape);
  // Natively parsed flat data (the common case): only its length to check.
  const native = numbers(data);
  if (native) {
    if (native.length === n) return native;
    throw new SluiceError('SHAPE_MISMATCH', `input ${name} has shape [${shape}] (${n} elements) but ${native.length} elements of data`);
  }
  if (!Array.isArray(data)) throw new SluiceError('INVALID_ARGUMENT', `input ${name} data must be an array`);
  // Flat data: just the element count to check.
  if (data.length === n && (n === 0 || !isArrayOrNumbers(data[0], numbers))) return data;
  if (data.length > 0 && !isArrayOrNumbers(data[0], numbers)) {
    throw new SluiceError('SHAPE_MISMATCH', `input ${name} has shape [${shape}] (${n} elements) but ${data.length} elements of data`);
  }
  const out: unknown[] = [];
  const walk = (node: unknown, dim: number): void => {
    if (dim === shape.length) {
      if (isArrayOrNumbers(node, numbers)) throw new SluiceError('SHAPE_MISMATCH', `input ${name} data nests deeper than its shape [${shape}]`);
      out.push(node);
      return;
    }
    const children = (numbers(node) ?? (Array.isArray(node) ? node : undefined)) as ArrayLike<unknown> | undefined;
    if (!children || children.length !== shape[dim]) {
      throw new SluiceError('SHAPE_MISMATCH', `input ${name} data does not match its shape [${shape}] at dimension ${dim}`);
    }
    for (let i = 0; i < children.length; i++) walk(children[i], dim + 1);
  };
  walk(data, 0);
  return out;
}

/** Small float tensors are carved from a shared slab rather than allocated one by one. */
const SLAB_BYTES = 64 * 1024;
const MAX_SLAB_TENSOR = 4 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

/**
 * A zeroed Float32Array of `n` elements. A fresh one of more than 64 bytes is an off-heap
 * allocation V8 accounts as external memory (~1-2 us under load for a 100-float request); small
 * ones are views into a 64 kB slab instead, as Node does for small Buffers. Regions are never
 * reused: a slab is garbage once no tensor carved from it is referenced.
 */
function float32(n: number): Float32Array {
  const bytes = n * 4;
  if (bytes > MAX_SLAB_TENSOR) return new Float32Array(n);
  if (slabUsed + bytes > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const f = new Float32Array(slab, slabUsed, n);
  // Keep every view 8-byte aligned, as a fresh allocation would be.
  slabUsed += (bytes + 7) & ~7;
  return f;
}

/** FP32 from natively parsed doubles: the same checks as for JSON numbers, on a typed loop. */
function fp32FromDoubles(v: Float64Array, name: string): Float32Array {
  const f = float32(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!(x <= F32_MAX && x >= -F32_MAX)) throw bad(name, i, x, 'FP32');
    f[i] = x;
  }
  return f;
}

/**
 * JSON `data` of a tensor with `shape` and `dt` -> the typed array that holds it. `numbers`
 * resolves natively parsed arrays (see parseInferJson).
 */
export function decodeTensorData(data: unknown, dt: Datatype, shape: readonly number[], name: string, numbers = noNumbers): TypedArray {
  const Ctor = arrayClassOf(dt);
  if (!Ctor) throw new SluiceError('DATATYPE_MISMATCH', `input ${name}: datatype ${dt} is not supported`);
  const flat = flatten(data, shape, name, numbers);
  if (dt === 'FP32' && flat instanceof Float64Array) return fp32FromDoubles(flat, name);
  const n = flat.length;
  if (dt === 'FP32') {
    const f = float32(n);
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      // typeof plus one comparison: NaN fails it, as do Infinity and anything beyond FP32.
      if (typeof v !== 'number' || !(v <= F32_MAX && v >= -F32_MAX)) throw bad(name, i, v, dt);
      f[i] = v;
    }
    return f;
  }
  const out = new Ctor(n);
  if (dt === 'FP64') {
    const f = out as Float64Array;
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(name, i, v, dt);
      f[i] = v;
    }
    return f;
  }
  if (dt === 'FP16') {
    const f = out as Uint16Array;
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'number' || !(v <= F16_MAX && v >= -F16_MAX)) throw bad(name, i, v, dt);
      f[i] = toHalfBits(v);
    }
    return f;
  }
  if (dt === 'BOOL') {
    const f = out as Uint8Array;
    for (let i = 0; i < n; i++) {
      const v = flat[i];
      if (typeof v !== 'boolean') throw bad(name, i, v, dt);
      f[i] = v ? 1 : 0;
    }
    return f;
  }
  const range = INT_RANGES[dt]!;
  const big = dt === 'INT64' || dt === 'UINT64';
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range.min || v > range.max) throw bad(name, i, v, dt);
    if (big) (out as BigInt64Array)[i] = BigInt(v);
    else (out as Int32Array)[i] = v;
  }
  return out;
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * A typed array as the text of a JSON array. Float outputs that are not finite (a model can
 * produce them) become null, since JSON has no NaN; 64-bit integers beyond 2^53 are written
 * exactly as digits (valid JSON numbers).
 */
export function encodeTensorData(data: TypedArray, dt: Datatype): string {
  if (dt === 'FP32' || dt === 'FP64') {
    const a = data as Float32Array;
    for (let i = 0; i < a.length; i++) {
      if (!Number.isFinite(a[i]!)) return '[' + Array.from(a, (v) => (Number.isFinite(v) ? String(v) : 'null')).join(',') + ']';
    }
    return '[' + a.join(',') + ']';
  }
  if (dt === 'BOOL') return '[' + Array.from(data as Uint8Array, (v) => (v ? 'true' : 'false')).join(',') + ']';
  if (dt === 'FP16') {
    return '[' + Array.from(data as Uint16Array, (h) => {
      const v = halfToNumber(h);
      return Number.isFinite(v) ? String(v) : 'null';
    }).join(',') + ']';
  }
  return '[' + (data as Int32Array).join(',') + ']';
}
