/** Open Inference Protocol datatypes and the typed arrays that hold them. */

export const DATATYPES = [
  'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64',
  'FP16', 'FP32', 'FP64', 'BYTES',
] as const;
export type Datatype = (typeof DATATYPES)[number];

export type TypedArray =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array
  | Int8Array | Int16Array | Int32Array | BigInt64Array
  | Float32Array | Float64Array;

type TypedArrayCtor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

/**
 * Numeric datatypes and their array classes. FP16 travels as raw 16-bit patterns (Node 20 has
 * no Float16Array); BOOL as one byte per element. BYTES is not a fixed-width type and has no
 * entry: runtimes that need strings will add their own path.
 */
const ARRAY_OF: Partial<Record<Datatype, TypedArrayCtor>> = {
  BOOL: Uint8Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array,
  INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array,
  FP16: Uint16Array, FP32: Float32Array, FP64: Float64Array,
};

export function isDatatype(s: unknown): s is Datatype {
  return typeof s === 'string' && (DATATYPES as readonly string[]).includes(s);
}

/** The largest finite float32; FP32 values beyond it (or NaN) are refused. */
export const F32_MAX = 3.4028234663852886e38;

/** The typed-array class of a fixed-width datatype, or undefined for BYTES. */
export function arrayClassOf(dt: Datatype): TypedArrayCtor | undefined {
  return ARRAY_OF[dt];
}

/**
 * `count` elements of `Ctor` over raw little-endian bytes: a view when they are aligned for the
 * element type, else (or when `copy`) in a fresh buffer of their own.
 */
export function typedFromBytes(Ctor: TypedArrayCtor, bytes: Uint8Array, count: number, copy = false): TypedArray {
  if (!copy && bytes.byteOffset % Ctor.BYTES_PER_ELEMENT === 0) return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, count);
  const own = new Uint8Array(count * Ctor.BYTES_PER_ELEMENT);
  own.set(bytes.subarray(0, own.byteLength));
  return new Ctor(own.buffer, 0, count);
}

export function bytesPerElement(dt: Datatype): number {
  const c = ARRAY_OF[dt];
  if (!c) throw new Error(`datatype ${dt} has no fixed element size`);
  return c.BYTES_PER_ELEMENT;
}

/** True when `data` is the array class that holds `dt`. */
export function holds(dt: Datatype, data: TypedArray): boolean {
  const c = ARRAY_OF[dt];
  return c !== undefined && data.constructor === c;
}

/** A tensor: OIP name, datatype and shape, with its elements in row-major order. */
export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TypedArray;
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
