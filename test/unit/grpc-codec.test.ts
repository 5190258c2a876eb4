import { describe, expect, it } from 'vitest';
import { decodeModelInfer, encodeModelInfer, encodeStreamResponse } from '../../src/frontend/codec/grpc-infer.js';
import { packageDefinition } from '../../src/frontend/grpc/definition.js';
import { Writer } from '../../src/frontend/codec/protobuf.js';
import { SluiceError } from '../../src/errors.js';
import type { InferResponse } from '../../src/service/types.js';

function response(elements: number): InferResponse {
  const data = new Float32Array(elements).map((_, i) => i / 3);
  return { model: 'm', version: '1', id: 'r-1', outputs: [{ name: 'y', datatype: 'FP32', shape: [1, elements], data }] };
}

describe('gRPC stream answers', () => {
  it('frame a response in place exactly as a nested copy would, for every length-varint size', () => {
    // Message lengths under 128 B, under 16 kB and above: 1-, 2- and 3-byte length varints.
    for (const n of [0, 4, 100, 3000, 100_000]) {
      const res = response(n);
      const nested = new Writer(64).bytes(2, encodeModelInfer(res)).finish();
      expect(Buffer.compare(encodeStreamResponse(res), nested)).toBe(0);
    }
  });

  it('carry an error message alone', () => {
    const b = encodeStreamResponse(undefined, new SluiceError('SHAPE_MISMATCH', 'bad'));
    expect(b).toEqual(new Writer().string(1, 'SHAPE_MISMATCH: bad').finish());
  });
});

describe('gRPC raw input tensors', () => {
  const serialize = (packageDefinition['inference.GRPCInferenceService'] as any).ModelInfer.requestSerialize as (m: unknown) => Buffer;

  /** A request whose raw tensor lands at every offset mod 8 (model names of 1..8 chars). */
  function requests(dt: 'FP32' | 'FP64' | 'INT64', values: ArrayLike<number | bigint>) {
    const Ctor = dt === 'FP32' ? Float32Array : dt === 'FP64' ? Float64Array : BigInt64Array;
    const x = new (Ctor as any)(values) as Float32Array | Float64Array | BigInt64Array;
    return [1, 2, 3, 4, 5, 6, 7, 8].map((n) => ({
      x,
      // Copied into a buffer at an odd offset, as a pooled grpc-js buffer may be.
      buf: Buffer.concat([Buffer.alloc(n % 3), serialize({
        model_name: 'm'.repeat(n), inputs: [{ name: 'x', datatype: dt, shape: [1, x.length] }, { name: 'y', datatype: dt, shape: [1, x.length] }],
        raw_input_contents: [Buffer.from(x.buffer), Buffer.from(x.buffer)],
      })]).subarray(n % 3),
    }));
  }

  it('decode to the values sent at every alignment, small and large, 4- and 8-byte types', () => {
    for (const dt of ['FP32', 'FP64', 'INT64'] as const) {
      for (const len of [1, 3, 31, 32, 100, 4096, 102_400]) {
        const values = Array.from({ length: len }, (_, i) => (dt === 'INT64' ? BigInt(i * 7 - 3) : (i * 0.37) - 11));
        for (const { x, buf } of requests(dt, values)) {
          const { request } = decodeModelInfer(buf);
          expect(request.model.length).toBeGreaterThan(0);
          for (const t of request.inputs) {
            expect(t.data.byteOffset % t.data.BYTES_PER_ELEMENT).toBe(0);
            expect(Array.from(t.data as ArrayLike<number>)).toEqual(Array.from(x as ArrayLike<number>));
          }
        }
      }
    }
  });
});
