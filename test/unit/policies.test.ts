import { describe, expect, it } from 'vitest';
import { manifestToJSON, parseManifest } from '../../src/model/manifest.js';
import { PredictionCache } from '../../src/service/resilience/prediction-cache.js';
import { DefaultOutputs } from '../../src/service/resilience/fallback.js';
import type { Tensor } from '../../src/model/tensor.js';

const base = {
  name: 'm',
  version: '1',
  kind: 'logistic',
  signature: {
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 3] }],
    outputs: [{ name: 'p', datatype: 'FP32', shape: [-1, 2] }, { name: 'k', datatype: 'INT32', shape: [-1, 1] }],
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

describe('manifest policies', () => {
  it('has none by default, and reads all three with their defaults', () => {
    expect(parseManifest(base).policies).toEqual({});
    const m = parseManifest({
      ...base,
      fallback: { policy: 'default', outputs: { p: [0.5, 0.25], k: [7] } },
      circuit_breaker: { window: 8 },
      cache: { max_entries: 100, ttl_ms: 1000 },
    });
    expect(m.policies.fallback).toEqual({ policy: 'default', outputs: { p: [0.5, 0.25], k: [7] }, budgetMs: 50 });
    expect(m.policies.circuitBreaker).toEqual({ window: 8, minCalls: 8, failureRate: 0.5, openMs: 5000, halfOpenProbes: 1, closeAfter: 3 });
    expect(m.policies.cache).toEqual({ maxEntries: 100, maxBytes: 0, ttlMs: 1000 });
    // Round trip through the on-disk form.
    expect(parseManifest(manifestToJSON(m)).policies).toEqual(m.policies);
  });

  it.each([
    ['unknown policy', { fallback: { policy: 'guess' } }, 'fallback.policy'],
    ['default without outputs', { fallback: { policy: 'default' } }, 'fallback.outputs'],
    ['default of the wrong row size', { fallback: { policy: 'default', outputs: { p: [1], k: [1] } } }, 'fallback.outputs.p'],
    ['default missing an output', { fallback: { policy: 'default', outputs: { p: [1, 2] } } }, 'fallback.outputs.k'],
    ['default not fitting INT32', { fallback: { policy: 'default', outputs: { p: [1, 2], k: [1.5] } } }, 'fallback.outputs.k'],
    ['default for an unknown output', { fallback: { policy: 'default', outputs: { p: [1, 2], k: [1], z: [1] } } }, 'fallback.outputs.z'],
    ['model without a name', { fallback: { policy: 'model' } }, 'fallback.model'],
    ['model naming itself', { fallback: { policy: 'model', model: 'm' } }, 'another model'],
    ['model on another policy', { fallback: { policy: 'fail_fast', model: 'x' } }, 'fallback.model'],
    ['unknown fallback key', { fallback: { policy: 'fail_fast', retries: 3 } }, 'fallback.retries'],
    ['breaker rate over 1', { circuit_breaker: { failure_rate: 1.5 } }, 'failure_rate'],
    ['breaker min_calls over window', { circuit_breaker: { window: 5, min_calls: 6 } }, 'min_calls'],
    ['breaker zero probes', { circuit_breaker: { half_open_probes: 0 } }, 'half_open_probes'],
    ['cache negative ttl', { cache: { ttl_ms: -1 } }, 'ttl_ms'],
    ['cache unknown key', { cache: { size: 3 } }, 'cache.size'],
  ])('refuses %s', (_, extra, where) => {
    expect(err({ ...base, ...extra })).toContain(where);
  });
});

describe('default outputs', () => {
  it('repeats the one-row default for every row, fresh arrays each time', () => {
    const m = parseManifest({ ...base, fallback: { policy: 'default', outputs: { p: [0.5, 0.25], k: [7] } } });
    const d = new DefaultOutputs(m);
    const a = d.build(3);
    expect(a[0]).toEqual({ data: new Float32Array([0.5, 0.25, 0.5, 0.25, 0.5, 0.25]), shape: [3, 2] });
    expect(a[1]).toEqual({ data: new Int32Array([7, 7, 7]), shape: [3, 1] });
    a[0]!.data[0] = 99;
    expect(d.build(1)[0]!.data[0]).toBe(0.5);
  });
});

describe('prediction cache', () => {
  const x = (v: number, shape = [1, 3]): Tensor => ({ name: 'features', datatype: 'FP32', shape, data: new Float32Array(shape[0]! * shape[1]!).fill(v) });
  const outs = (v: number) => [{ data: new Float32Array([v, v]), shape: [1, 2] }];

  it('keys on exact bytes, datatype and shape', () => {
    const c = new PredictionCache({ maxEntries: 10, maxBytes: 0, ttlMs: 0 });
    expect(c.key([x(1)])).toBe(c.key([x(1)]));
    expect(c.key([x(1)])).not.toBe(c.key([x(1 + 2 ** -20)]));
    expect(c.key([x(0, [1, 3])])).not.toBe(c.key([x(0, [3, 1])]));
    const asInt: Tensor = { name: 'features', datatype: 'INT32', shape: [1, 3], data: new Int32Array(new Float32Array(3).fill(1).buffer) };
    expect(c.key([asInt])).not.toBe(c.key([x(1)]));
  });

  it('shares no buffer with what was stored or what was handed out', () => {
    const c = new PredictionCache({ maxEntries: 10, maxBytes: 0, ttlMs: 0 });
    const o = outs(1);
    c.set('k', o);
    o[0]!.data[0] = 42;
    const hit = c.get('k')!;
    expect(hit[0]!.data[0]).toBe(1);
    hit[0]!.data[0] = 43;
    expect(c.get('k')![0]!.data[0]).toBe(1);
  });

  it('evicts the least recently used past max_bytes and counts it', () => {
    let evictions = 0;
    const c = new PredictionCache({ maxEntries: 1000, maxBytes: 3 * 200, ttlMs: 0 }, () => evictions++);
    const keys = [0, 1, 2, 3, 4].map((v) => c.key([x(v)]));
    for (const [i, k] of keys.entries()) c.set(k, outs(i));
    expect(c.bytes).toBeLessThanOrEqual(600);
    expect(c.entries).toBeLessThan(5);
    expect(evictions).toBe(5 - c.entries);
    expect(c.get(keys[0]!)).toBeUndefined();
    expect(c.get(keys[4]!)).toBeDefined();
  });

  it('forgets entries after their TTL', async () => {
    const c = new PredictionCache({ maxEntries: 10, maxBytes: 0, ttlMs: 30 });
    c.set('k', outs(1));
    expect(c.get('k')).toBeDefined();
    await new Promise((r) => setTimeout(r, 60));
    expect(c.get('k')).toBeUndefined();
  });
});
