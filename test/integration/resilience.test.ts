/**
 * Fallbacks, circuit breakers and the prediction cache with a real engine, real pool workers
 * and real sockets: fixture models that fail, hang and recover on a switch file the test
 * creates and removes (every worker thread sees it at once).
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { binaryBody, postJson, startServer, type TestServer } from '../helpers/http.js';
import { call, startGrpc, type InferenceClient } from '../helpers/grpc.js';
import { openStream } from '../helpers/ws.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';
import type { GrpcServer } from '../../src/frontend/grpc/server.js';

const ERR = 13;
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const body = (v: number, rows = 1) => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], data: new Array(rows * 4).fill(0).map((_, i) => (i % 4 === 0 ? v : 1)) }] });

describe('resilience: fallbacks, circuit breakers, prediction cache', () => {
  let s: TestServer;
  let grpcServer: GrpcServer;
  let client: InferenceClient;
  let repo: Awaited<ReturnType<typeof tempRepo>>;
  const file = (n: string) => path.join(repo.root, `${n}.switch`);
  const on = (n: string) => writeFile(file(n), '');
  const off = (n: string) => rm(file(n), { force: true });
  const infer = (model: string, b: unknown, headers: Record<string, string> = {}, version?: string) =>
    postJson(`${s.url}/v2/models/${model}${version ? `/versions/${version}` : ''}/infer`, b, headers);
  const executions = (model: string) => s.engine.modelStats(model).reduce((n, v) => n + v.executions, 0);
  const metrics = async () => (await fetch(`${s.url}/metrics`)).text();
  const metric = (text: string, name: string, labels: string) => {
    const line = text.split('\n').find((l) => l.startsWith(name + '{') && labels.split(',').every((p) => l.includes(p)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  beforeAll(async () => {
    repo = await tempRepo();
    const root = repo.root;
    const sw = (n: string) => path.join(root, `${n}.switch`);
    // Fails while "flaky-fail" exists, sleeps 1 s per batch while "flaky-hang" exists.
    await writeFixture(root, 'flaky', '1', { op: 'sum', fail_while_exists: sw('flaky-fail'), hang_while_exists: sw('flaky-hang'), hang_ms: 1000 }, {
      policies: {
        fallback: { policy: 'default', outputs: { y: [-1] } },
        circuit_breaker: { window: 4, min_calls: 4, failure_rate: 0.5, open_ms: 300, half_open_probes: 1, close_after: 2 },
      },
    });
    await writeFixture(root, 'hangs', '1', { op: 'sum', hang_while_exists: sw('hang'), hang_ms: 1500 }, { policies: { fallback: { policy: 'default', outputs: { y: [-2] } } } });
    await writeFixture(root, 'hangs-ff', '1', { op: 'sum', hang_while_exists: sw('hang'), hang_ms: 1500 }, { policies: { fallback: { policy: 'fail_fast' } } });
    await writeFixture(root, 'plain-hangs', '1', { op: 'sum', hang_while_exists: sw('hang'), hang_ms: 1500 });
    await writeFixture(root, 'ff', '1', { op: 'sum', error_on: ERR }, { policies: { fallback: { policy: 'fail_fast' }, circuit_breaker: { window: 2, min_calls: 2, failure_rate: 1, open_ms: 60_000 } } });
    await writeFixture(root, 'dflt', '1', { op: 'sum', error_on: ERR }, { policies: { fallback: { policy: 'default', outputs: { y: [0.5] } }, cache: { max_entries: 10 } } });
    await writeFixture(root, 'pv', '1', { op: 'sum' });
    await writeFixture(root, 'pv', '2', { op: 'sum', error_on: ERR }, { policies: { fallback: { policy: 'previous_version' } } });
    await writeFixture(root, 'backup', '1', { op: 'sum' }, { dispatch: 'inline' });
    await writeFixture(root, 'echo4', '1', { op: 'echo' }, { dispatch: 'inline' });
    await writeFixture(root, 'primary', '1', { op: 'sum', error_on: ERR }, { policies: { fallback: { policy: 'model', model: 'backup' } } });
    await writeFixture(root, 'primary-bad', '1', { op: 'sum', error_on: ERR }, { policies: { fallback: { policy: 'model', model: 'echo4' } } });
    await writeFixture(root, 'cached', '1', { op: 'sum' }, { dispatch: 'inline', policies: { cache: { max_entries: 100, ttl_ms: 1000 } } });
    await writeFixture(root, 'cached', '2', { op: 'sum' }, { dispatch: 'inline', policies: { cache: { max_entries: 100, ttl_ms: 1000 } } });
    await writeFixture(root, 'cached-small', '1', { op: 'sum' }, { policies: { cache: { max_entries: 1000, max_bytes: 700 } } });
    s = await startServer({ modelRepository: root, workers: 2, allowFixtureModels: true });
    ({ server: grpcServer, client } = await startGrpc(s.engine));
  });
  afterAll(async () => {
    client?.close();
    await grpcServer?.close(1000);
    await s?.close();
    await repo?.cleanup();
  });

  it('breaker opens after the threshold, answers from the fallback, probes are bounded, closes after recovery', async () => {
    const good = await infer('flaky', body(2));
    expect(good.status).toBe(200);
    expect(good.json.outputs[0].data).toEqual([5]);
    expect(good.json.parameters).toBeUndefined();

    await on('flaky-fail');
    // With the success before them, three failures in four calls (min_calls 4, rate 0.5) open
    // it; each is answered by the default output.
    for (let i = 0; i < 3; i++) {
      const r = await infer('flaky', body(2, 2));
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ model_name: 'flaky', model_version: '1', parameters: { fallback: 'default', fallback_reason: 'error' } });
      expect(r.json.outputs[0]).toEqual({ name: 'y', datatype: 'FP32', shape: [2, 1], data: [-1, -1] });
    }
    let m = await metrics();
    expect(metric(m, 'sluice_circuit_breaker_state', 'model="flaky",state="open"')).toBe(1);
    // Open: answered at once from the fallback, the model is not run.
    const ran = executions('flaky');
    const refused = await infer('flaky', body(2));
    expect(refused.json.parameters).toEqual({ fallback: 'default', fallback_reason: 'circuit_open' });
    expect(executions('flaky')).toBe(ran);

    // The model recovers but is slow; after the cool-down only one probe may run at a time.
    await off('flaky-fail');
    await on('flaky-hang');
    await new Promise((r) => setTimeout(r, 350));
    const burst = await Promise.all(Array.from({ length: 5 }, () => infer('flaky', body(2))));
    const probes = burst.filter((r) => r.json.parameters === undefined);
    expect(probes).toHaveLength(1);
    expect(probes[0]!.json.outputs[0].data).toEqual([5]);
    expect(burst.filter((r) => r.json.parameters?.fallback_reason === 'circuit_open')).toHaveLength(4);
    expect(executions('flaky')).toBe(ran + 1);
    m = await metrics();
    expect(metric(m, 'sluice_circuit_breaker_state', 'model="flaky",state="half_open"')).toBe(1);

    // close_after 2: the second successful probe closes it.
    await off('flaky-hang');
    const second = await infer('flaky', body(3));
    expect(second.json.parameters).toBeUndefined();
    expect(second.json.outputs[0].data).toEqual([6]);
    m = await metrics();
    expect(metric(m, 'sluice_circuit_breaker_state', 'model="flaky",state="closed"')).toBe(1);
    expect(metric(m, 'sluice_circuit_breaker_transitions_total', 'model="flaky",from="closed",to="open"')).toBe(1);
    expect(metric(m, 'sluice_circuit_breaker_transitions_total', 'model="flaky",from="open",to="half_open"')).toBe(1);
    expect(metric(m, 'sluice_circuit_breaker_transitions_total', 'model="flaky",from="half_open",to="closed"')).toBe(1);
    expect(metric(m, 'sluice_fallbacks_total', 'model="flaky",policy="default",reason="error"')).toBe(3);
    expect(metric(m, 'sluice_fallbacks_total', 'model="flaky",policy="default",reason="circuit_open"')).toBe(5);
    // Closed again: the model answers everything.
    const all = await Promise.all(Array.from({ length: 4 }, (_, i) => infer('flaky', body(i))));
    all.forEach((r, i) => expect(r.json).toMatchObject({ outputs: [{ data: [i + 3] }] }));
    expect(all.every((r) => r.json.parameters === undefined)).toBe(true);
  });

  it('a deadline miss on a hanging model falls back at the deadline (default output), fails fast with fail_fast', async () => {
    await on('hang');
    try {
      let t0 = performance.now();
      const r = await infer('hangs', body(1), { 'Timeout-Ms': '150' });
      const ms = performance.now() - t0;
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ model_name: 'hangs', parameters: { fallback: 'default', fallback_reason: 'deadline' }, outputs: [{ data: [-2] }] });
      expect(ms).toBeLessThan(1200); // the hang lasts 1,500 ms
      t0 = performance.now();
      const ff = await infer('hangs-ff', body(1), { 'Timeout-Ms': '150' });
      expect(ff.status).toBe(504);
      expect(ff.json.code).toBe('DEADLINE_EXCEEDED');
      expect(performance.now() - t0).toBeLessThan(1200);
      // Without a policy nothing changes: the request waits for the model.
      t0 = performance.now();
      const plain = await infer('plain-hangs', body(1), { 'Timeout-Ms': '150' });
      expect(plain.status).toBe(200);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(1400);
    } finally {
      await off('hang');
    }
  });

  it('fail_fast: model errors are returned, then the open breaker refuses with CIRCUIT_OPEN without running', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await infer('ff', body(ERR));
      expect(r.status).toBe(500);
      expect(r.json.code).toBe('MODEL_ERROR');
    }
    const ran = executions('ff');
    const r = await infer('ff', body(1));
    expect(r.status).toBe(503);
    expect(r.json.code).toBe('CIRCUIT_OPEN');
    expect(r.headers.get('retry-after')).not.toBeNull();
    expect(executions('ff')).toBe(ran);
  });

  it('previous_version: after a swap the retired version stays loaded and answers for the new one', async () => {
    // Loaded first with nothing before it: no previous version, the error stands.
    expect(s.engine.modelConfig('pv').version).toBe('2');
    const none = await infer('pv', body(ERR));
    expect(none.status).toBe(500);
    await s.engine.load('pv', { version: '1' });
    await s.engine.load('pv', { version: '2' });
    expect(s.engine.heldVersions('pv').map((v) => [v.version, v.retired])).toEqual([['1', false], ['2', false]]);
    const r = await infer('pv', body(ERR));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ model_name: 'pv', model_version: '1', parameters: { fallback: 'previous_version', fallback_reason: 'error' }, outputs: [{ data: [ERR + 3] }] });
    // Re-loading version 2 keeps version 1 as its fallback (not a copy of version 2).
    await s.engine.load('pv', { version: '2' });
    expect(s.engine.heldVersions('pv').map((v) => [v.version, v.retired])).toEqual([['1', false], ['2', false]]);
    expect((await infer('pv', body(ERR))).json).toMatchObject({ model_version: '1', parameters: { fallback: 'previous_version' } });
    // The standby is not addressable and does not serve by itself.
    expect((await infer('pv', body(1), {}, '1')).status).toBe(404);
    expect((await infer('pv', body(1))).json.model_version).toBe('2');
    // Unloading frees both.
    await s.engine.unload('pv');
    expect(s.engine.heldVersions('pv')).toEqual([]);
  });

  it('named model: another loaded model with the same signature answers; an incompatible one does not', async () => {
    const r = await infer('primary', body(ERR));
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ model_name: 'backup', model_version: '1', parameters: { fallback: 'model', fallback_reason: 'error' }, outputs: [{ data: [ERR + 3] }] });
    const bad = await infer('primary-bad', body(ERR));
    expect(bad.status).toBe(500);
    expect(bad.json.code).toBe('MODEL_ERROR');
  });

  it('parameters.fallback reaches binary HTTP, gRPC and WebSocket answers', async () => {
    const x = new Float32Array([ERR, 1, 1, 1]);
    const { body: bin, headerLength } = binaryBody({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: { binary_data_size: 16 } }], parameters: { binary_data_output: true } }, [new Uint8Array(x.buffer)]);
    const res = await fetch(`${s.url}/v2/models/dflt/infer`, { method: 'POST', headers: { 'inference-header-content-length': String(headerLength) }, body: bin });
    const buf = Buffer.from(await res.arrayBuffer());
    const head = JSON.parse(buf.subarray(0, Number(res.headers.get('inference-header-content-length'))).toString());
    expect(head.parameters).toEqual({ fallback: 'default', fallback_reason: 'error' });

    const g = await call(client, 'ModelInfer', { model_name: 'dflt', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [ERR, 1, 1, 1] } }] });
    expect(g.parameters.fallback.string_param).toBe('default');
    expect(g.parameters.fallback_reason.string_param).toBe('error');
    expect(new Float32Array(new Uint8Array(g.raw_output_contents[0]).buffer)[0]).toBe(0.5);
    const gOk = await call(client, 'ModelInfer', { model_name: 'dflt', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 1, 1, 1] } }] });
    expect(gOk.parameters).toEqual({});

    const ws = await openStream(s.url);
    try {
      ws.ws.send(packr.pack({ id: 7, model: 'dflt', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Uint8Array(x.buffer) }] }));
      const [a] = await ws.next(1);
      expect((a as unknown as { parameters: unknown }).parameters).toEqual({ fallback: 'default', fallback_reason: 'error' });
    } finally {
      ws.ws.close();
    }
  });

  it('cache: hits and misses counted, the model not run on a hit, answers not shared, noCache bypasses', async () => {
    const before = executions('cached');
    const a = await infer('cached', body(4));
    const b = await infer('cached', body(4));
    expect(b.json).toEqual(a.json);
    expect(executions('cached')).toBe(before + 1);
    const m = await metrics();
    expect(metric(m, 'sluice_prediction_cache_requests_total', 'model="cached",version="2",result="hit"')).toBe(1);
    expect(metric(m, 'sluice_prediction_cache_requests_total', 'model="cached",version="2",result="miss"')).toBe(1);
    // In process: a caller that writes into its answer does not change the next one.
    const req = () => ({ model: 'cached', inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [1, 4], data: new Float32Array([4, 1, 1, 1]) }] });
    const first = await s.engine.infer(req());
    first.outputs[0]!.data[0] = 999;
    expect((await s.engine.infer(req())).outputs[0]!.data[0]).toBe(7);
    // An inline model behind the guard still answers synchronously (miss and hit alike).
    expect(s.engine.inferNow({ ...req(), inputs: [{ ...req().inputs[0]!, data: new Float32Array([5, 5, 5, 5]) }] })).not.toBeInstanceOf(Promise);
    expect(s.engine.inferNow(req())).not.toBeInstanceOf(Promise);
    const ran = executions('cached');
    await s.engine.infer({ ...req(), noCache: true });
    expect(executions('cached')).toBe(ran + 1);
  });

  it('cache: a fallback answer is never cached', async () => {
    for (let i = 0; i < 2; i++) expect((await infer('dflt', body(ERR, 3))).json.parameters?.fallback).toBe('default');
    const m = await metrics();
    expect(metric(m, 'sluice_prediction_cache_requests_total', 'model="dflt",result="hit"')).toBe(0);
  });

  it('cache: entries expire after ttl_ms', async () => {
    await infer('cached', body(9));
    const ran = executions('cached');
    await infer('cached', body(9));
    expect(executions('cached')).toBe(ran);
    await new Promise((r) => setTimeout(r, 1100));
    await infer('cached', body(9));
    expect(executions('cached')).toBe(ran + 1);
  });

  it('cache: the byte bound evicts least recently used entries', async () => {
    for (let i = 0; i < 6; i++) await infer('cached-small', body(100 + i));
    const m = await metrics();
    const bytes = metric(m, 'sluice_prediction_cache_bytes', 'model="cached-small"')!;
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(700);
    expect(metric(m, 'sluice_prediction_cache_evictions_total', 'model="cached-small"')).toBeGreaterThan(0);
    const ran = executions('cached-small');
    await infer('cached-small', body(100)); // the oldest was evicted: computed again
    expect(executions('cached-small')).toBe(ran + 1);
    await infer('cached-small', body(100)); // and cached again
    expect(executions('cached-small')).toBe(ran + 1);
  });

  it('cache: another version is never hit, and a swap starts from an empty cache', async () => {
    await infer('cached', body(21));
    const m0 = await metrics();
    const hits2 = metric(m0, 'sluice_prediction_cache_requests_total', 'model="cached",version="2",result="hit"')!;
    await s.engine.load('cached', { version: '1' });
    const r = await infer('cached', body(21));
    expect(r.json.model_version).toBe('1');
    let m = await metrics();
    expect(metric(m, 'sluice_prediction_cache_requests_total', 'model="cached",version="1",result="miss"')).toBe(1);
    expect(metric(m, 'sluice_prediction_cache_requests_total', 'model="cached",version="1",result="hit"')).toBe(0);
    // Back to 2: a new load of version 2, whose cache starts empty (no stale entry served).
    await s.engine.load('cached', { version: '2' });
    const ran = executions('cached');
    const again = await infer('cached', body(21));
    expect(again.json.model_version).toBe('2');
    expect(executions('cached')).toBe(ran + 1);
    m = await metrics();
    expect(metric(m, 'sluice_prediction_cache_requests_total', 'model="cached",version="2",result="hit"')).toBe(hits2);
  });
});
