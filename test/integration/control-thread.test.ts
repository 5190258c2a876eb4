/**
 * A dedicated control thread (SLUICE_CONTROL_THREAD=dedicated): the main thread serves no
 * request, two worker I/O threads serve HTTP, gRPC and the WebSocket stream on the shared ports,
 * and everything the main thread owns still works through them (the admin API, routes, the
 * decision log, feedback, a pooled model, the drain at stop).
 */
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, fp32Request } from '../helpers/grpc.js';
import { randomF32 } from '../helpers/random.js';
import { admin, startFull, type FullServer } from '../helpers/server.js';
import { tempDir } from '../helpers/services.js';
import { serve } from '../../src/serve.js';
import { f32Frame, openStream } from '../helpers/ws.js';
import { packageDefinition } from '../../src/frontend/grpc/definition.js';

const pkg = grpc.loadPackageDefinition(packageDefinition) as any;

async function threadCounts(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^sluice_io_thread_requests_total\{thread="(\d+)"\} (\d+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

const body = (x: Float32Array) => JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(x) }] });

describe('a dedicated control thread: the main thread serves nothing, two worker I/O threads serve everything', () => {
  let s: FullServer;

  beforeAll(async () => {
    // Admission off: this file tests which threads serve, not shedding.
    s = await startFull({ ioThreads: 2, workers: 1, admission: false, controlThread: 'dedicated' });
  });
  afterAll(() => s?.close());

  it('has no front ends on the main thread and says it serves on two I/O threads', () => {
    expect(s.ioThreads).toBe(2);
    expect(s.http).toBeUndefined();
    expect(s.grpc).toBeUndefined();
  });

  it('answers HTTP, gRPC and WebSocket requests, inline and pooled, from the worker threads only', async () => {
    const before = await threadCounts(s.url);
    const pool = new Pool(s.url, { connections: 16 });
    const client = new pkg.inference.GRPCInferenceService(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    try {
      await Promise.all(Array.from({ length: 300 }, async (_, i) => {
        const model = i % 3 === 0 ? 'demo-onnx' : 'demo-logistic';
        const res = await pool.request({ path: `/v2/models/${model}/infer`, method: 'POST', headers: { 'content-type': 'application/json' }, body: body(randomF32(100, i)) });
        const json = await res.body.json() as any;
        expect(res.statusCode, JSON.stringify(json)).toBe(200);
        expect(json.outputs[0].data).toHaveLength(1);
      }));
      for (let i = 0; i < 20; i++) {
        const r = await call(client, 'ModelInfer', fp32Request('demo-logistic', randomF32(100, i), 1, true));
        expect(r.raw_output_contents).toHaveLength(1);
      }
      const stream = await openStream(s.url);
      for (let i = 0; i < 10; i++) stream.ws.send(f32Frame(i, 'demo-logistic', randomF32(100, i), 1));
      const answers = await stream.next(10);
      stream.ws.close();
      expect(answers.filter((a) => a.error !== undefined)).toEqual([]);
    } finally {
      client.close();
      await pool.close();
    }
    const after = await threadCounts(s.url);
    // Thread 0 is the main thread: it took none; both workers took some (16 connections).
    expect((after.get('0') ?? 0) - (before.get('0') ?? 0)).toBe(0);
    for (const t of ['1', '2']) expect((after.get(t) ?? 0) - (before.get(t) ?? 0), `thread ${t}`).toBeGreaterThan(0);
    const total = [...after.values()].reduce((a, b) => a + b, 0) - [...before.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(300 + 20 + 10);
  });

  it('puts a route in force through a worker thread\'s admin API, logs its decisions with features, and joins feedback', async () => {
    const put = await admin(s, s.adminKey, 'PUT', '/v1/admin/models/demo-logistic/route', { variants: [{ name: 'all', version: '1', weight: 1 }], assignment: 'random', log_features: true });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    const logged = s.decisions.stats.logged;
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(randomF32(100, 1000 + i)) });
      const json = await res.json() as any;
      expect(res.status, JSON.stringify(json)).toBe(200);
      expect(json.parameters.variant).toBe('all');
      ids.push(json.parameters.event_id);
    }
    // The threads hand their chunks over within their flush interval; then the log writes them.
    await new Promise((r) => setTimeout(r, 100));
    await s.decisions.flush();
    expect(s.decisions.stats.logged - logged).toBe(40);
    const rows = await s.registry.db.query<{ n: number; bytes: number }>('SELECT count(*)::int AS n, min(length(context))::int AS bytes FROM all_decisions WHERE event_id = ANY($1)', [ids]);
    expect(rows[0]).toEqual({ n: 40, bytes: 400 });
    const fb = await fetch(`${s.url}/v1/feedback`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${s.adminKey}` }, body: JSON.stringify({ event_id: ids[0], reward: 1 }) });
    expect(await fb.json()).toEqual({ event_id: ids[0], status: 'accepted' });
    expect((await admin(s, s.adminKey, 'DELETE', '/v1/admin/models/demo-logistic/route')).status).toBe(200);
  });
});

describe('a dedicated control thread at shutdown', () => {
  it('turns unready, keeps answering through the grace period, then closes the ports', async () => {
    const tmp = await tempDir('sluice-control-thread-');
    const s = await serve({ dataDir: tmp.dir, httpPort: 0, grpcPort: 0, workers: 1, ioThreads: 2, controlThread: 'dedicated', adminKey: `sk_test_admin_${'x'.repeat(40)}`, startupModels: ['demo-logistic'], reconcileMs: 60_000 });
    const url = `http://127.0.0.1:${s.httpPort}`;
    const graceMs = 800;
    const t0 = Date.now();
    const stopped = s.stop({ graceMs });
    try {
      await new Promise((r) => setTimeout(r, 150));
      expect((await fetch(`${url}/v2/health/ready`)).status).toBe(503);
      const res = await fetch(`${url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(randomF32(100, 1)) });
      expect(res.status).toBe(200);
      await stopped;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(graceMs);
      await expect(fetch(`${url}/v2/health/live`)).rejects.toThrow();
    } finally {
      // Stopped (also when an expectation failed); then only the data directory is left.
      await stopped.catch(() => undefined);
      await tmp.cleanup();
    }
  });
});
