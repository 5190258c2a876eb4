import { describe, expect, it } from 'vitest';
import { compareVersions, parseManifest } from '../../src/model/manifest.js';

const base = {
  name: 'm',
  version: '1',
  kind: 'logistic',
  signature: {
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 3] }],
    outputs: [{ name: 'p', datatype: 'FP32', shape: [-1, 1] }],
  },
  payload: { file: 'weights.json', sha256: 'a'.repeat(64) },
};

function err(raw: unknown): string {
  try {
    parseManifest(raw);
    return 'parsed';
  } catch (e) {
    expect((e as { code: string }).code).toBe('MANIFEST_INVALID');
    return (e as Error).message;
  }
}

describe('model manifest', () => {
  it('parses a valid manifest with batching defaults', () => {
    const m = parseManifest(base);
    expect(m.batching).toEqual({ maxBatchSize: 1024, maxQueueDelayUs: 0, maxQueueSize: 4096 });
    expect(m.dispatch).toBeUndefined();
    expect(Object.isFrozen(m)).toBe(true);
  });

  it.each([
    ['not an object', 7, 'must be an object'],
    ['bad name', { ...base, name: '../etc' }, 'name'],
    ['bad version', { ...base, version: 'a/b' }, 'version'],
    ['unknown kind', { ...base, kind: 'pickle' }, 'kind'],
    ['bad sha', { ...base, payload: { file: 'w', sha256: 'xyz' } }, 'sha256'],
    ['path in payload file', { ...base, payload: { file: '../w', sha256: 'a'.repeat(64) } }, 'payload.file'],
    ['no inputs', { ...base, signature: { inputs: [], outputs: base.signature.outputs } }, 'inputs'],
    ['bad datatype', { ...base, signature: { ...base.signature, inputs: [{ name: 'f', datatype: 'FLOAT', shape: [-1, 3] }] } }, 'datatype'],
    ['BYTES unsupported', { ...base, signature: { ...base.signature, inputs: [{ name: 'f', datatype: 'BYTES', shape: [-1, 3] }] } }, 'not supported'],
    ['zero dim', { ...base, signature: { ...base.signature, inputs: [{ name: 'f', datatype: 'FP32', shape: [-1, 0] }] } }, 'dimensions'],
    ['batch dim fixed', { ...base, signature: { ...base.signature, inputs: [{ name: 'f', datatype: 'FP32', shape: [4, 3] }] } }, 'first dimension'],
    ['duplicate tensor', { ...base, signature: { ...base.signature, inputs: [base.signature.inputs[0], base.signature.inputs[0]] } }, 'duplicate'],
    ['bad dispatch', { ...base, dispatch: 'gpu' }, 'dispatch'],
    ['bad max_batch_size', { ...base, max_batch_size: -1 }, 'max_batch_size'],
    ['bad queue', { ...base, dynamic_batching: { max_queue_size: 0 } }, 'max_queue_size'],
  ])('refuses %s', (_what, raw, fragment) => {
    expect(err(raw)).toContain(fragment);
  });

  it('allows fixed shapes when max_batch_size is 0', () => {
    const m = parseManifest({ ...base, max_batch_size: 0, signature: { ...base.signature, inputs: [{ name: 'f', datatype: 'FP32', shape: [2, 3] }] } });
    expect(m.batching.maxBatchSize).toBe(0);
  });

  it('orders versions numerically where they are numbers', () => {
    const vs = ['10', '9', '1.10.0', '1.9.3', '2', '1.2.0-rc1', '1.2.0'];
    expect([...vs].sort(compareVersions)).toEqual(['1.2.0', '1.2.0-rc1', '1.9.3', '1.10.0', '2', '9', '10']);
  });
});
