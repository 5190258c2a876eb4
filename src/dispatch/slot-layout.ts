/**
 * Where a batch lives inside its arena slot. Computed identically by the I/O thread (writing
 * inputs, reading outputs) and the worker (reading inputs, writing outputs) from the manifest.
 *
 *   [header 512 B] [input 0: maxBatch rows] [input 1] ... [output 0] ...
 *   header: gen i32, rows i32, error code i32, error length i32, error message (UTF-8)
 * every region 64-byte aligned (BigInt64 and SIMD loads want aligned data).
 */
import { catalogue, isErrorCode, SluiceError, type SerializedError } from '../errors.js';
import type { Manifest } from '../model/manifest.js';
import { rowLayout, type TensorLayout } from '../model/signature.js';
import { alignUp } from './arena.js';

export const HEADER_BYTES = 512;
/** Int32 indices within the header. */
export const H_GEN = 0;
export const H_ROWS = 1;
const H_ERR_CODE = 2;
const H_ERR_LEN = 3;
const ERR_TEXT_AT = 16;
const ERR_TEXT_MAX = HEADER_BYTES - ERR_TEXT_AT;
const CODES = Object.keys(catalogue);

/** Writes a batch's error into its slot header (worker side). */
export function writeSlotError(arena: SharedArrayBuffer, slot: number, e: SerializedError): void {
  const i32 = new Int32Array(arena, slot, 4);
  const bytes = Buffer.from(e.message, 'utf8').subarray(0, ERR_TEXT_MAX);
  new Uint8Array(arena, slot + ERR_TEXT_AT, bytes.length).set(bytes);
  i32[H_ERR_CODE] = Math.max(0, CODES.indexOf(e.code));
  i32[H_ERR_LEN] = bytes.length;
}

/** Reads the error a worker left in a slot header (I/O thread side). */
export function readSlotError(arena: SharedArrayBuffer, slot: number): SluiceError {
  const i32 = new Int32Array(arena, slot, 4);
  const code = CODES[i32[H_ERR_CODE]!];
  const len = Math.min(Math.max(i32[H_ERR_LEN]!, 0), ERR_TEXT_MAX);
  const message = Buffer.from(new Uint8Array(arena, slot + ERR_TEXT_AT, len)).toString('utf8');
  return new SluiceError(isErrorCode(code) ? code : 'INTERNAL', message);
}

export interface RegionLayout extends TensorLayout {
  /** Byte offset of the region from the start of the slot. */
  offset: number;
}

export interface SlotLayout {
  inputs: RegionLayout[];
  outputs: RegionLayout[];
  /** Bytes per slot, aligned. */
  bytes: number;
  maxRows: number;
}

/** The slot layout of a batched manifest, or the reason it cannot use arena slots. */
export function slotLayout(m: Manifest): SlotLayout | string {
  const rows = rowLayout(m);
  if (typeof rows === 'string') return rows;
  const maxRows = m.batching.maxBatchSize;
  let at = HEADER_BYTES;
  const place = (t: TensorLayout): RegionLayout => {
    const region = { ...t, offset: at };
    at = alignUp(at + maxRows * t.rowElements * t.bytesPerElement);
    return region;
  };
  const inputs = rows.inputs.map(place);
  const outputs = rows.outputs.map(place);
  return { inputs, outputs, bytes: alignUp(at), maxRows };
}
