/**
 * encodeInfer (src/frontend/codec/oip-infer.ts) keeps the text of recent answers' openings and
 * of routed variants' decision parameters: whatever it reuses, every answer must read back as
 * exactly its own model, version, variant and propensity, for answers alternating between
 * versions and variants, a bandit route's changing propensities, more variants than it keeps,
 * and names that need escaping.
 */
import { describe, expect, it } from 'vitest';
import { encodeInfer } from '../../src/frontend/codec/oip-infer.js';
import type { InferResponse } from '../../src/service/types.js';

function answer(model: string, version: string, decision?: InferResponse['decision']): InferResponse {
  return { model, version, outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: new Float32Array([0.5]) }], ...(decision ? { decision } : {}) };
}

function decode(r: InferResponse): { model_name: string; model_version: string; parameters?: Record<string, unknown> } {
  return JSON.parse(encodeInfer(r, undefined).json);
}

describe('encodeInfer', () => {
  it('names each answer\'s own model and version, alternating between versions and models', () => {
    const cases: Array<[string, string]> = [['m', '1'], ['m', '2'], ['m', '1'], ['n', '1'], ['m', '2'], ['m', '2'], ['n', '"q"\\'], ['m', '1']];
    for (let round = 0; round < 3; round++) {
      for (const [model, version] of cases) {
        const j = decode(answer(model, version));
        expect([j.model_name, j.model_version]).toEqual([model, version]);
        expect(j.parameters).toBeUndefined();
      }
    }
  });

  it('writes each decision\'s own variant and propensity, as they change', () => {
    const seq: Array<[string, number]> = [['a', 0.9], ['b', 0.1], ['a', 0.9], ['a', 0.25], ['b', 0.1], ['', 1], ['é"\\', 0.3333333333333333], ['a', 0.9]];
    // Past the cache's bound too: 300 distinct variants, then the first ones again.
    for (let i = 0; i < 300; i++) seq.push([`v${i}`, (i + 1) / 1000]);
    for (let i = 0; i < 10; i++) seq.push([`v${i}`, (i + 1) / 1000]);
    for (const [k, [variant, propensity]] of seq.entries()) {
      const eventId = `0190b1e2-8a3c-7def-8123-${String(k).padStart(12, '0')}`;
      const j = decode(answer('m', k % 2 === 0 ? '1' : '2', { eventId, variant, propensity }));
      const expected: Record<string, unknown> = { event_id: eventId, propensity };
      if (variant !== '') expected.variant = variant;
      expect(j.parameters).toEqual(expected);
      expect(j.model_version).toBe(k % 2 === 0 ? '1' : '2');
    }
  });
});
