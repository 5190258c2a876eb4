import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/model/manifest.js';
import { checkInputs, selectOutputs } from '../../src/model/signature.js';
import type { Tensor } from '../../src/model/tensor.js';

const m = parseManifest({
  name: 'm',
  version: '1',
  kind: 'onnx',
  signature: {
    inputs: [
      { name: 'a', datatype: 'FP32', shape: [-1, 2] },
      { name: 'b', datatype: 'INT64', shape: [-1, 3] },
    ],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }, { name: 'z', datatype: 'FP32', shape: [-1, 1] }],
  },
  max_batch_size: 4,
  payload: { file: 'model.onnx', sha256: 'a'.repeat(64) },
});

const a = (rows: number, data = new Float32Array(rows * 2)): Tensor => ({ name: 'a', datatype: 'FP32', shape: [rows, 2], data });
const b = (rows: number): Tensor => ({ name: 'b', datatype: 'INT64', shape: [rows, 3], data: new BigInt64Array(rows * 3) });

function code(inputs: Tensor[]): string {
  try {
    checkInputs(m, inputs);
    return 'ok';
  } catch (e) {
    return (e as { code: string }).code;
  }
}

describe('request checks against the signature', () => {
  it('orders inputs by the signature and returns the batch rows', () => {
    const got = checkInputs(m, [b(3), a(3)]);
    expect(got.rows).toBe(3);
    expect(got.ordered.map((t) => t.name)).toEqual(['a', 'b']);
  });

  it.each([
    ['a missing input', [a(1)], 'INPUT_MISSING'],
    ['an unknown input', [a(1), b(1), { ...a(1), name: 'c' }], 'INPUT_UNKNOWN'],
    ['a duplicate input', [a(1), a(1), b(1)], 'INPUT_UNKNOWN'],
    ['a wrong datatype', [{ ...a(1), datatype: 'FP64' }, b(1)], 'DATATYPE_MISMATCH'],
    ['data of the wrong array type', [{ ...a(1), data: new Float64Array(2) }, b(1)], 'DATATYPE_MISMATCH'],
    ['a wrong rank', [{ ...a(1), shape: [2] }, b(1)], 'SHAPE_MISMATCH'],
    ['a wrong fixed dimension', [{ ...a(1), shape: [1, 3], data: new Float32Array(3) }, b(1)], 'SHAPE_MISMATCH'],
    ['too few elements', [a(2, new Float32Array(3)), b(2)], 'SHAPE_MISMATCH'],
    ['too many elements', [a(1, new Float32Array(3)), b(1)], 'SHAPE_MISMATCH'],
    ['a negative dimension', [{ ...a(1), shape: [-1, 2] }, b(1)], 'SHAPE_MISMATCH'],
    ['a fractional dimension', [{ ...a(1), shape: [0.5, 2] }, b(1)], 'SHAPE_MISMATCH'],
    ['an empty batch', [a(0), b(0)], 'SHAPE_MISMATCH'],
    ['inputs disagreeing on rows', [a(1), b(2)], 'SHAPE_MISMATCH'],
    ['more rows than max_batch_size', [a(5), b(5)], 'BATCH_TOO_LARGE'],
  ] as Array<[string, Tensor[], string]>)('refuses %s', (_what, inputs, want) => {
    expect(code(inputs)).toBe(want);
  });

  it('selects outputs by name and refuses unknown ones', () => {
    expect(selectOutputs(m.signature, undefined)).toBeUndefined();
    expect(selectOutputs(m.signature, ['z'])).toEqual([1]);
    expect(() => selectOutputs(m.signature, ['nope'])).toThrow(expect.objectContaining({ code: 'OUTPUT_UNKNOWN' }));
  });
});
