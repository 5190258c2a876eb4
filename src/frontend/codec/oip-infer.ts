/**
 * Open Inference Protocol (v2) inference bodies <-> engine requests and responses: JSON tensors
 * (flat or nested `data`), Triton's binary tensor extension (`Inference-Header-Content-Length`,
 * `binary_data_size`, `binary_data` / `binary_data_output`), output selection, request ids and
 * the `timeout` parameter (microseconds, as in Triton).
 */
import { SluiceError } from '../../errors.js';
import { arrayClassOf, elementCount, isDatatype, typedFromBytes, type Datatype, type Tensor, type TypedArray } from '../../model/tensor.js';
import type { InferRequest, InferResponse } from '../../service/types.js';
import { asObject, own, parseInferJson } from './safe-json.js';
import { checkFinite } from './finite.js';
import { decodeTensorData, encodeTensorData } from './tensor-json.js';

export interface DecodedInfer {
  request: InferRequest;
  /** Outputs to return as binary: every one, the named ones, or none. */
  binaryOutputs: 'all' | Set<string> | undefined;
}

const MAX_DIMS = 8;

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new SluiceError('INVALID_ARGUMENT', `${what} must be a string`);
  return v;
}

function shapeOf(v: unknown, name: string): number[] {
  if (!Array.isArray(v) || v.length > MAX_DIMS) throw new SluiceError('INVALID_ARGUMENT', `input ${name} shape must be an array of at most ${MAX_DIMS} dimensions`);
  for (const d of v) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw new SluiceError('SHAPE_MISMATCH', `input ${name} shape [${v}] must hold non-negative integers`);
  }
  return v as number[];
}

/**
 * A binary tensor inside the body. Zero-copy when the bytes are aligned for the element type
 * (the HTTP layer pads the body so the binary section starts 8-byte aligned); copied otherwise.
 */
function binaryView(bytes: Uint8Array, dt: Datatype, count: number): TypedArray {
  const Ctor = arrayClassOf(dt);
  if (!Ctor) throw new SluiceError('DATATYPE_MISMATCH', `datatype ${dt} is not supported`);
  return typedFromBytes(Ctor, bytes, count);
}

/**
 * Decodes an infer body. `jsonLength` is the Inference-Header-Content-Length header (binary
 * extension) or undefined for a pure JSON body. `now` is the performance.now() of arrival;
 * `model` and `version` come from the URL.
 */
export function decodeInfer(body: Uint8Array, jsonLength: number | undefined, maxDepth: number, now: number, model: string, version: string | undefined): DecodedInfer {
  if (jsonLength !== undefined && (!Number.isSafeInteger(jsonLength) || jsonLength < 0 || jsonLength > body.byteLength)) {
    throw new SluiceError('INVALID_ARGUMENT', `Inference-Header-Content-Length ${jsonLength} does not fit a body of ${body.byteLength} bytes`);
  }
  const json = jsonLength === undefined ? body : body.subarray(0, jsonLength);
  // Tensor data arrays are parsed natively; `numbers` resolves them (synchronously, below).
  const parsed = parseInferJson(json, maxDepth);
  const numbers = parsed.numbers;
  const doc = asObject(parsed.doc, 'inference request');
  let binaryAt = jsonLength ?? body.byteLength;

  const inputsRaw = own(doc, 'inputs');
  if (!Array.isArray(inputsRaw) || inputsRaw.length === 0) throw new SluiceError('INVALID_ARGUMENT', 'inputs must be a non-empty array');
  const inputs: Tensor[] = inputsRaw.map((raw, i) => {
    const t = asObject(raw, `inputs[${i}]`);
    const name = str(own(t, 'name'), `inputs[${i}].name`);
    const datatype = own(t, 'datatype');
    if (!isDatatype(datatype)) throw new SluiceError('DATATYPE_MISMATCH', `input ${name} datatype ${String(datatype)} is not an Open Inference Protocol datatype`);
    const shape = shapeOf(own(t, 'shape'), name);
    const params = own(t, 'parameters');
    const binarySize = params === undefined ? undefined : own(asObject(params, `input ${name} parameters`), 'binary_data_size');
    const data = own(t, 'data');
    if (binarySize !== undefined) {
      if (jsonLength === undefined) throw new SluiceError('INVALID_ARGUMENT', `input ${name} has binary_data_size but the request has no Inference-Header-Content-Length`);
      if (data !== undefined) throw new SluiceError('INVALID_ARGUMENT', `input ${name} has both data and binary_data_size`);
      if (typeof binarySize !== 'number' || !Number.isSafeInteger(binarySize) || binarySize < 0) {
        throw new SluiceError('INVALID_ARGUMENT', `input ${name} binary_data_size must be a non-negative integer`);
      }
      const Ctor = arrayClassOf(datatype);
      if (!Ctor) throw new SluiceError('DATATYPE_MISMATCH', `input ${name}: datatype ${datatype} is not supported`);
      const count = elementCount(shape);
      if (count * Ctor.BYTES_PER_ELEMENT !== binarySize) {
        throw new SluiceError('SHAPE_MISMATCH', `input ${name} has shape [${shape}] of ${datatype} (${count * Ctor.BYTES_PER_ELEMENT} bytes) but binary_data_size ${binarySize}`);
      }
      if (binaryAt + binarySize > body.byteLength) throw new SluiceError('SHAPE_MISMATCH', `input ${name} binary data runs past the end of the body`);
      const view = binaryView(body.subarray(binaryAt, binaryAt + binarySize), datatype, count);
      checkFinite(name, datatype, view);
      binaryAt += binarySize;
      return { name, datatype, shape, data: view };
    }
    if (data === undefined) throw new SluiceError('INVALID_ARGUMENT', `input ${name} has no data`);
    return { name, datatype, shape, data: decodeTensorData(data, datatype, shape, name, numbers) };
  });
  if (jsonLength !== undefined && binaryAt !== body.byteLength) {
    throw new SluiceError('INVALID_ARGUMENT', `${body.byteLength - binaryAt} bytes of binary data are not claimed by any input`);
  }

  const idRaw = own(doc, 'id');
  const id = idRaw === undefined ? undefined : str(idRaw, 'id');
  let deadline: number | undefined;
  let binaryOutputs: DecodedInfer['binaryOutputs'];
  let unitId: string | undefined;
  const paramsRaw = own(doc, 'parameters');
  if (paramsRaw !== undefined) {
    const params = asObject(paramsRaw, 'parameters');
    const timeout = own(params, 'timeout');
    if (timeout !== undefined) {
      if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) throw new SluiceError('INVALID_ARGUMENT', 'parameters.timeout must be a non-negative number of microseconds');
      if (timeout > 0) deadline = now + timeout / 1000;
    }
    const bin = own(params, 'binary_data_output');
    if (bin !== undefined && typeof bin !== 'boolean') throw new SluiceError('INVALID_ARGUMENT', 'parameters.binary_data_output must be a boolean');
    if (bin) binaryOutputs = 'all';
    const unit = own(params, 'unit_id');
    if (unit !== undefined) unitId = unitIdOf(unit, 'parameters.unit_id');
  }
  let outputs: string[] | undefined;
  const outputsRaw = own(doc, 'outputs');
  if (outputsRaw !== undefined) {
    if (!Array.isArray(outputsRaw)) throw new SluiceError('INVALID_ARGUMENT', 'outputs must be an array');
    outputs = outputsRaw.map((raw, i) => {
      const o = asObject(raw, `outputs[${i}]`);
      const name = str(own(o, 'name'), `outputs[${i}].name`);
      const p = own(o, 'parameters');
      if (p !== undefined) {
        const b = own(asObject(p, `output ${name} parameters`), 'binary_data');
        if (b !== undefined && typeof b !== 'boolean') throw new SluiceError('INVALID_ARGUMENT', `output ${name} binary_data must be a boolean`);
        if (b && binaryOutputs !== 'all') {
          binaryOutputs ??= new Set<string>();
          binaryOutputs.add(name);
        }
      }
      return name;
    });
  }
  return { request: { model, version, id, inputs, outputs, deadline, unitId }, binaryOutputs };
}

export interface EncodedInfer {
  /** The JSON part. */
  json: string;
  /** Binary output data following the JSON, in output order (empty when none). */
  binary: Uint8Array[];
}

/**
 * The response's opening `{"model_name":..,"model_version":..` for the last two versions
 * answered: the engine hands out the same name and version strings on every response of a
 * version, so consecutive answers of one version reuse the text instead of escaping it again,
 * and so do answers alternating between two versions (a two-variant route's).
 */
let lastHead = { model: '', version: '', text: '{"model_name":"","model_version":""' };
let otherHead = lastHead;

function head(model: string, version: string): string {
  if (model === lastHead.model && version === lastHead.version) return lastHead.text;
  const other = otherHead;
  otherHead = lastHead;
  lastHead = model === other.model && version === other.version
    ? other
    : { model, version, text: '{"model_name":' + JSON.stringify(model) + ',"model_version":' + JSON.stringify(version) };
  return lastHead.text;
}

/**
 * A routed answer's `,"variant":..,"propensity":..` by variant: a route's variant answers with
 * the same propensity every time (its weight; a bandit route's changes as it learns), so the
 * text is made once per variant and propensity instead of escaping and formatting both on every
 * answer (~100 ns of a routed answer's ~400 ns of encoding, a loop, 2026-12-07). Bounded: it
 * starts afresh past MAX_TAILS variants (routes come and go).
 */
const tails = new Map<string, { propensity: number; text: string }>();
const MAX_TAILS = 256;

function decisionTail(variant: string, propensity: number): string {
  const t = tails.get(variant);
  if (t !== undefined && t.propensity === propensity) return t.text;
  if (tails.size >= MAX_TAILS) tails.clear();
  const text = (variant !== '' ? ',"variant":' + JSON.stringify(variant) : '') + ',"propensity":' + propensity;
  tails.set(variant, { propensity, text });
  return text;
}

/** Encodes a response: JSON tensors, or binary ones where the request asked for them. */
export function encodeInfer(res: InferResponse, binaryOutputs: DecodedInfer['binaryOutputs']): EncodedInfer {
  const binary: Uint8Array[] = [];
  let out = head(res.model, res.version);
  if (res.id !== undefined) out += ',"id":' + JSON.stringify(res.id);
  // Which fallback answered instead of the requested version, the routing or bandit decision
  // (absent on answers that no route or bandit chose), and the learned state that computed it.
  if (res.fallback !== undefined || res.decision !== undefined || res.state !== undefined) {
    let p = '';
    const d = res.decision;
    if (d !== undefined) {
      p += '"event_id":"' + d.eventId + '"' + decisionTail(d.variant, d.propensity);
      if (d.action !== undefined) p += ',"action":' + d.action;
      if (d.eventIds !== undefined) p += ',"event_ids":"' + d.eventIds.join(',') + '"';
    }
    if (res.state !== undefined) p += (p === '' ? '' : ',') + '"state":' + res.state;
    if (res.fallback !== undefined) p += (p === '' ? '' : ',') + '"fallback":' + JSON.stringify(res.fallback) + ',"fallback_reason":' + JSON.stringify(res.fallbackReason ?? '');
    out += ',"parameters":{' + p + '}';
  }
  out += ',"outputs":[';
  for (let i = 0; i < res.outputs.length; i++) {
    const t = res.outputs[i]!;
    if (i > 0) out += ',';
    out += '{"name":' + JSON.stringify(t.name) + ',"datatype":"' + t.datatype + '","shape":[' + t.shape.join(',') + ']';
    if (binaryOutputs === 'all' || binaryOutputs?.has(t.name)) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      binary.push(bytes);
      out += ',"parameters":{"binary_data_size":' + bytes.byteLength + '}}';
    } else {
      out += ',"data":' + encodeTensorData(t.data, t.datatype) + '}';
    }
  }
  return { json: out + ']}', binary };
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Longest unit id accepted: ids are user, session or device keys, not payloads. */
export const MAX_UNIT_ID = 256;

/**
 * A unit id (string, or an integer sent as a number) checked: non-empty, at most MAX_UNIT_ID
 * characters, no control characters (it is stored with the decision, and PostgreSQL text
 * refuses NUL).
 */
export function unitIdOf(v: unknown, what: string): string {
  const s = typeof v === 'string' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : undefined;
  if (s === undefined || s === '' || s.length > MAX_UNIT_ID || CONTROL.test(s)) throw new SluiceError('INVALID_ARGUMENT', `${what} must be a non-empty string of at most ${MAX_UNIT_ID} characters without control characters (or an integer)`);
  return s;
}
