/**
 * ModelInferRequest / ModelInferResponse (inference.proto) <-> engine requests and responses,
 * decoded and encoded by hand on the hot path: `raw_input_contents` become typed arrays over
 * the message bytes (copied only when misaligned), typed `contents` are range-checked element
 * by element exactly like JSON data, and outputs always go back as `raw_output_contents`.
 */
import { SluiceError } from '../../errors.js';
import { arrayClassOf, elementCount, F32_MAX, isDatatype, typedFromBytes, type Datatype, type Tensor, type TypedArray } from '../../model/tensor.js';
import type { InferRequest, InferResponse } from '../../service/types.js';
import { checkFinite } from './finite.js';
import { Reader, WIRE_BYTES, WIRE_FIXED32, WIRE_FIXED64, WIRE_VARINT, Writer } from './protobuf.js';
import { unitIdOf } from './oip-infer.js';

interface RawInput {
  name: string;
  datatype: string;
  shape: number[];
  /** Elements from `contents`, when the client used typed fields. */
  values: Array<number | bigint | boolean>;
  contentsField: number;
}

export interface DecodedGrpcInfer {
  /** The engine request, without a deadline (the server adds it, with the call's own). */
  request: InferRequest;
  /** The `timeout` parameter, microseconds (0 = none). */
  timeoutUs: number;
}

const RANGES: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127], INT16: [-32768, 32767], INT32: [-2147483648, 2147483647],
  UINT8: [0, 255], UINT16: [0, 65535], UINT32: [0, 4294967295],
};
/** Which InferTensorContents field carries each datatype. */
const CONTENTS_FIELD: Partial<Record<Datatype, number>> = {
  BOOL: 1, INT8: 2, INT16: 2, INT32: 2, INT64: 3, UINT8: 4, UINT16: 4, UINT32: 4, UINT64: 5, FP32: 6, FP64: 7,
};

/** One element of InferTensorContents field `field`. */
function readElement(r: Reader, field: number): number | bigint | boolean {
  switch (field) {
    case 1: return r.varint() !== 0;
    case 2: return r.int();
    case 3: return r.varint64(true);
    case 4: return r.varint();
    case 5: return r.varint64(false);
    case 6: return r.float32();
    case 7: return r.float64();
    default: throw new SluiceError('MALFORMED_REQUEST', 'unexpected contents field');
  }
}

/** Reads a packed (or single unpacked) repeated scalar field into `out`. */
function readRepeated(r: Reader, wire: number, field: number, out: Array<number | bigint | boolean>): void {
  const fixed = field === 6 ? 4 : field === 7 ? 8 : 0;
  if (wire === WIRE_BYTES) {
    const inner = r.sub();
    if (fixed && (inner.end - inner.pos) % fixed !== 0) throw new SluiceError('MALFORMED_REQUEST', 'malformed protobuf: packed field has a partial element');
    while (!inner.done) out.push(readElement(inner, field));
    return;
  }
  const expected = fixed === 4 ? WIRE_FIXED32 : fixed === 8 ? WIRE_FIXED64 : WIRE_VARINT;
  if (wire !== expected) throw new SluiceError('MALFORMED_REQUEST', `malformed protobuf: contents field ${field} has wire type ${wire}`);
  out.push(readElement(r, field));
}

function readContents(inner: Reader, input: RawInput): void {
  while (!inner.done) {
    const [field, wire] = inner.tag();
    if (field >= 1 && field <= 7) {
      if (input.contentsField !== 0 && input.contentsField !== field) throw new SluiceError('INVALID_ARGUMENT', `input ${input.name} mixes contents fields`);
      input.contentsField = field;
      readRepeated(inner, wire, field, input.values);
    } else {
      inner.skip(wire);
    }
  }
}

/** Reads a map<string, InferParameter> entry: returns [key, value]. */
function readParameter(e: Reader): [string, number | bigint | string | boolean | undefined] {
  let key = '';
  let value: number | bigint | string | boolean | undefined;
  while (!e.done) {
    const [f, w] = e.tag();
    if (f === 1 && w === WIRE_BYTES) key = e.string();
    else if (f === 2 && w === WIRE_BYTES) {
      const v = e.sub();
      while (!v.done) {
        const [vf, vw] = v.tag();
        if (vf === 1 && vw === WIRE_VARINT) value = v.varint() !== 0;
        else if (vf === 2 && vw === WIRE_VARINT) value = v.varint64(true);
        else if (vf === 3 && vw === WIRE_BYTES) value = v.string();
        else if (vf === 4 && vw === WIRE_FIXED64) value = v.float64();
        else if (vf === 5 && vw === WIRE_VARINT) value = v.varint64(false);
        else v.skip(vw);
      }
    } else e.skip(w);
  }
  return [key, value];
}

function readInput(t: Reader): RawInput {
  const input: RawInput = { name: '', datatype: '', shape: [], values: [], contentsField: 0 };
  while (!t.done) {
    const [f, w] = t.tag();
    if (f === 1 && w === WIRE_BYTES) input.name = t.string();
    else if (f === 2 && w === WIRE_BYTES) input.datatype = t.string();
    else if (f === 3) {
      if (w === WIRE_BYTES) {
        const p = t.sub();
        while (!p.done) input.shape.push(p.int());
      } else if (w === WIRE_VARINT) input.shape.push(t.int());
      else throw new SluiceError('MALFORMED_REQUEST', 'malformed protobuf: shape has the wrong wire type');
    } else if (f === 5 && w === WIRE_BYTES) readContents(t.sub(), input);
    else t.skip(w);
  }
  return input;
}

function readOutputName(o: Reader): string {
  let name = '';
  while (!o.done) {
    const [f, w] = o.tag();
    if (f === 1 && w === WIRE_BYTES) name = o.string();
    else o.skip(w);
  }
  return name;
}

/** One raw_input_contents entry, and how many bytes of its own field header precede it. */
interface RawEntry {
  bytes: Uint8Array;
  header: number;
}

/**
 * Typed array over raw bytes: a view when aligned. When not (the usual case: protobuf puts no
 * padding before a field), the bytes are moved back in place over their own field header,
 * already read, to the nearest aligned offset: one memmove inside the message, where a fresh
 * copy of a 400 kB tensor cost ~70 us more (allocation) and a fifth of the server's time on
 * 1,024-row streams. The message buffer is Sluice's alone (grpc-js hands it over and drops it).
 * A header too short for the shift (small tensors, 8-byte types) gets a copy.
 */
function rawTensor(e: RawEntry, dt: Datatype, count: number): TypedArray {
  const Ctor = arrayClassOf(dt)!;
  const b = e.bytes;
  const shift = b.byteOffset % Ctor.BYTES_PER_ELEMENT;
  if (shift !== 0 && shift <= e.header) {
    const whole = new Uint8Array(b.buffer, b.byteOffset - shift, b.byteLength + shift);
    whole.copyWithin(0, shift);
    return new Ctor(b.buffer as ArrayBuffer, b.byteOffset - shift, count);
  }
  return typedFromBytes(Ctor, b, count);
}

function typedFromValues(input: RawInput, dt: Datatype, count: number): TypedArray {
  const want = CONTENTS_FIELD[dt];
  if (want === undefined) throw new SluiceError('INVALID_ARGUMENT', `input ${input.name}: ${dt} must be sent in raw_input_contents`);
  if (input.contentsField !== 0 && input.contentsField !== want) throw new SluiceError('DATATYPE_MISMATCH', `input ${input.name}: ${dt} data must be in contents field ${want}`);
  if (input.values.length !== count) {
    throw new SluiceError('SHAPE_MISMATCH', `input ${input.name} has shape [${input.shape}] (${count} elements) but ${input.values.length} elements of data`);
  }
  const out = new (arrayClassOf(dt)!)(count);
  const bad = (i: number) => new SluiceError('INVALID_TENSOR_VALUE', `input ${input.name} element ${i} (${String(input.values[i])}) is not a valid ${dt} value`);
  const range = RANGES[dt];
  for (let i = 0; i < count; i++) {
    const v = input.values[i]!;
    if (dt === 'FP32') {
      if (!((v as number) <= F32_MAX && (v as number) >= -F32_MAX)) throw bad(i);
      (out as Float32Array)[i] = v as number;
    } else if (dt === 'FP64') {
      if (!Number.isFinite(v as number)) throw bad(i);
      (out as Float64Array)[i] = v as number;
    } else if (dt === 'BOOL') {
      (out as Uint8Array)[i] = v ? 1 : 0;
    } else if (dt === 'INT64' || dt === 'UINT64') {
      (out as BigInt64Array)[i] = v as bigint;
    } else if (range) {
      if ((v as number) < range[0] || (v as number) > range[1]) throw bad(i);
      (out as Int32Array)[i] = v as number;
    }
  }
  return out;
}

/**
 * Decodes a serialized ModelInferRequest. Throws coded errors on anything malformed. `checkTarget`
 * is called with the model and version once the message is read and before its inputs are
 * checked, so that an unknown model is refused as such whatever the inputs (as in Triton).
 */
export function decodeModelInfer(buf: Uint8Array, checkTarget?: (model: string, version: string | undefined) => void): DecodedGrpcInfer {
  const r = new Reader(buf);
  let model = '';
  let version = '';
  let id = '';
  let timeoutUs = 0;
  let unitId: string | undefined;
  const inputs: RawInput[] = [];
  const outputs: string[] = [];
  const raw: RawEntry[] = [];
  while (!r.done) {
    const fieldAt = r.pos;
    const [f, w] = r.tag();
    if (w !== WIRE_BYTES) {
      r.skip(w);
      continue;
    }
    switch (f) {
      case 1: model = r.string(); break;
      case 2: version = r.string(); break;
      case 3: id = r.string(); break;
      case 4: {
        const [k, v] = readParameter(r.sub());
        if (k === 'timeout') {
          const n = typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : NaN;
          if (!Number.isFinite(n) || n < 0) throw new SluiceError('INVALID_ARGUMENT', 'parameter timeout must be a non-negative integer of microseconds');
          timeoutUs = n;
        } else if (k === 'unit_id') {
          unitId = unitIdOf(typeof v === 'bigint' ? Number(v) : v, 'parameter unit_id');
        }
        break;
      }
      case 5: inputs.push(readInput(r.sub())); break;
      case 6: outputs.push(readOutputName(r.sub())); break;
      case 7: {
        const bytes = r.bytes();
        raw.push({ bytes, header: bytes.byteOffset - buf.byteOffset - fieldAt });
        break;
      }
      default: r.skip(w);
    }
  }
  if (model === '') throw new SluiceError('INVALID_ARGUMENT', 'model_name is required');
  checkTarget?.(model, version === '' ? undefined : version);
  if (inputs.length === 0) throw new SluiceError('INVALID_ARGUMENT', 'inputs must not be empty');
  if (raw.length > 0 && raw.length !== inputs.length) {
    throw new SluiceError('INVALID_ARGUMENT', `raw_input_contents has ${raw.length} entries for ${inputs.length} inputs`);
  }
  const tensors: Tensor[] = inputs.map((input, i) => {
    if (!isDatatype(input.datatype)) throw new SluiceError('DATATYPE_MISMATCH', `input ${input.name} datatype ${input.datatype} is not an Open Inference Protocol datatype`);
    const dt = input.datatype;
    const Ctor = arrayClassOf(dt);
    if (!Ctor) throw new SluiceError('DATATYPE_MISMATCH', `input ${input.name}: datatype ${dt} is not supported`);
    if (input.shape.some((d) => d < 0)) throw new SluiceError('SHAPE_MISMATCH', `input ${input.name} shape [${input.shape}] has a negative dimension`);
    const count = elementCount(input.shape);
    if (raw.length > 0) {
      if (input.contentsField !== 0) throw new SluiceError('INVALID_ARGUMENT', `input ${input.name} has both contents and raw_input_contents`);
      const e = raw[i]!;
      if (e.bytes.byteLength !== count * Ctor.BYTES_PER_ELEMENT) {
        throw new SluiceError('SHAPE_MISMATCH', `input ${input.name} has shape [${input.shape}] of ${dt} (${count * Ctor.BYTES_PER_ELEMENT} bytes) but ${e.bytes.byteLength} raw bytes`);
      }
      const data = rawTensor(e, dt, count);
      checkFinite(input.name, dt, data);
      return { name: input.name, datatype: dt, shape: input.shape, data };
    }
    return { name: input.name, datatype: dt, shape: input.shape, data: typedFromValues(input, dt, count) };
  });
  return {
    request: {
      model,
      version: version === '' ? undefined : version,
      id: id === '' ? undefined : id,
      inputs: tensors,
      outputs: outputs.length ? outputs : undefined,
      // Set by the server from the call; present here so every engine request has one shape.
      deadline: undefined,
      unitId,
    },
    timeoutUs,
  };
}

/** Writes a ModelInferResponse with raw_output_contents. */
function writeModelInfer(w: Writer, res: InferResponse): Writer {
  w.string(1, res.model).string(2, res.version);
  if (res.id !== undefined) w.string(3, res.id);
  if (res.fallback !== undefined || res.decision !== undefined || res.state !== undefined) {
    // map<string, InferParameter> parameters = 4: one entry message per key, string_param = 3,
    // double_param = 4.
    const param = (key: string, value: string) => w.message(4, (e) => {
      e.string(1, key).message(2, (p) => {
        p.string(3, value);
      });
    });
    // int64_param = 2.
    const int = (key: string, value: number) => w.message(4, (e) => {
      e.string(1, key).message(2, (p) => {
        p.tag(2, 0).int64(value);
      });
    });
    const d = res.decision;
    if (d !== undefined) {
      param('event_id', d.eventId);
      if (d.variant !== '') param('variant', d.variant);
      const propensity = d.propensity;
      w.message(4, (e) => {
        e.string(1, 'propensity').message(2, (p) => {
          p.double(4, propensity);
        });
      });
      if (d.action !== undefined) int('action', d.action);
      if (d.eventIds !== undefined) param('event_ids', d.eventIds.join(','));
    }
    if (res.state !== undefined) int('state', res.state);
    if (res.fallback !== undefined) {
      param('fallback', res.fallback);
      param('fallback_reason', res.fallbackReason ?? '');
    }
  }
  for (const t of res.outputs) {
    w.message(5, (o) => {
      o.string(1, t.name).string(2, t.datatype).packedInt64(3, t.shape);
    });
  }
  for (const t of res.outputs) w.bytes(6, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w;
}

/** Encodes a ModelInferResponse with raw_output_contents. */
export function encodeModelInfer(res: InferResponse): Buffer {
  return writeModelInfer(new Writer(256), res).finish();
}

/** Room in front of a stream answer for its infer_response tag and length (1 + up to 5 bytes). */
const STREAM_HEAD = 6;

/** Encodes a ModelStreamInferResponse carrying either a response or an error message. */
export function encodeStreamResponse(res: InferResponse | undefined, error?: SluiceError): Buffer {
  // The common case, a response alone: written once, its field header put in front in place
  // (the tensors are not copied a second time into an outer message).
  if (res && !error) return writeModelInfer(new Writer(256, STREAM_HEAD), res).finishAsField(2);
  const w = new Writer(256);
  if (error) w.string(1, `${error.code}: ${error.message}`);
  if (res) w.bytes(2, encodeModelInfer(res));
  return w.finish();
}
