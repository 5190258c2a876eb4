/**
 * I/O threads (issue #11): a whole server with two I/O threads (the main thread and one worker)
 * serving HTTP, gRPC and WebSocket on shared ports while versions are swapped 50 times.
 */
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, fp32Output, fp32Request, type InferenceClient } from '../helpers/grpc.js';
import { randomF32 } from '../helpers/random.js';
import { demoWeights, logistic } from '../helpers/repo.js';
import { admin, logisticVersion, registerBody, startFull, type FullServer } from '../helpers/server.js';
import { f32Frame, f32Of, openStream } from '../helpers/ws.js';
import { packageDefinition } from '../../src/frontend/grpc/definition.js';
import { linearSharedLive } from '../../src/native.js';
import { until } from '../helpers/server.js';

const pkg = grpc.loadPackageDefinition(packageDefinition) as any;
const w = demoWeights();
/** The versions registered here and their weight scales (the imported demo version is scale 1). */
const scales = new Map<string, number>([['7.0.0', 7], ['8.0.0', 8]]);

/** Per-thread request counters from /metrics. */
async function threadCounts(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^sluice_io_thread_requests_total\{thread="(\d+)"\} (\d+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

describe('two I/O threads: HTTP, gRPC and WebSocket across swaps', () => {
  let s: FullServer;
  let initial: string;

  beforeAll(async () => {
    // Admission off: this file tests the threads, not shedding (test/integration/overload.test.ts does).
    // With it on, a slow CI machine refused some of the pooled test's 16 concurrent calls with
    // OVERLOADED (one pool worker: the batcher's queueing delay passed its 5 ms target).
    s = await startFull({ ioThreads: 2, workers: 1, admission: false });
    for (const [version, scale] of scales) {
      const v = logisticVersion(scale);
      const { body, headers } = registerBody({ manifest: v.manifest, version }, v.payload);
      const r = await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', body, headers);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    initial = (await (await fetch(`${s.url}/v2/models/demo-logistic`)).json() as { versions: string[] }).versions[0]!;
    scales.set(initial, 1);
  });
  afterAll(() => s?.close());

  it('says it serves on two I/O threads and both answer', async () => {
    expect(s.ioThreads).toBe(2);
    const pool = new Pool(s.url, { connections: 16 });
    try {
      await Promise.all(Array.from({ length: 200 }, async () => {
        const r = await pool.request({ path: '/v2/health/ready', method: 'GET' });
        expect(r.statusCode).toBe(200);
        await r.body.text();
      }));
    } finally {
      await pool.close();
    }
  });

  it('50 swaps under load on every transport: 0 failures, each answer from the version it names, every thread serving', async () => {
    const failures: string[] = [];
    const seen = new Set<string>();
    const served = { http: 0, grpc: 0, ws: 0 };
    let running = true;
    const check = (transport: keyof typeof served, version: string, x: Float32Array, got: number) => {
      const scale = scales.get(version);
      if (scale === undefined) return failures.push(`${transport}: unknown version ${version}`);
      const want = logistic(x, w.map((q) => q * scale), 0.25);
      if (Math.abs(got - want) > 1e-5) return failures.push(`${transport}: version ${version} answered ${got}, expected ${want}`);
      seen.add(version);
      served[transport]++;
    };
    const before = await threadCounts(s.url);

    // HTTP: 8 keep-alive connections.
    const http = new Pool(s.url, { connections: 8 });
    const httpClient = async (k: number) => {
      for (let i = 0; running; i++) {
        const x = randomF32(100, k * 1_000_000 + i);
        const r = await http.request({
          path: '/v2/models/demo-logistic/infer', method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(x) }] }),
        });
        const json = await r.body.json() as any;
        if (r.statusCode !== 200) failures.push(`http ${r.statusCode} ${JSON.stringify(json)}`);
        else check('http', json.model_version, x, json.outputs[0].data[0]);
      }
    };
    // gRPC: 4 channels, each its own connection.
    const channels: InferenceClient[] = Array.from({ length: 4 }, () =>
      new pkg.inference.GRPCInferenceService(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
    const grpcClient = async (k: number) => {
      for (let i = 0; running; i++) {
        const x = randomF32(100, 50_000_000 + k * 1_000_000 + i);
        try {
          const r = await call(channels[k % channels.length]!, 'ModelInfer', fp32Request('demo-logistic', x, 1, true));
          check('grpc', r.model_version, x, fp32Output(r)[0]!);
        } catch (e) {
          failures.push(`grpc ${(e as Error).message}`);
        }
      }
    };
    // WebSocket: 2 streams, 4 frames in flight each.
    const streams = await Promise.all([0, 1].map(() => openStream(s.url)));
    const wsClient = async (k: number) => {
      const st = streams[k]!;
      const sent = new Map<number, Float32Array>();
      let id = 0;
      let answered = 0;
      while (running || answered < id) {
        while (running && id - answered < 4) {
          const x = randomF32(100, 90_000_000 + k * 1_000_000 + id);
          sent.set(id, x);
          st.ws.send(f32Frame(id, 'demo-logistic', x, 1));
          id++;
        }
        const answers = await st.next(answered + 1);
        for (; answered < answers.length; answered++) {
          const a = answers[answered]!;
          if (a.error) failures.push(`ws ${a.code} ${a.error}`);
          else check('ws', a.model_version!, sent.get(a.id as number)!, f32Of(a.outputs![0]!.data)[0]!);
        }
      }
    };
    const clients = [
      ...Array.from({ length: 8 }, (_, k) => httpClient(k)),
      ...Array.from({ length: 8 }, (_, k) => grpcClient(k)),
      wsClient(0), wsClient(1),
    ];

    const order = ['7.0.0', '8.0.0'];
    const loaded: string[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        const v = order[i % 2]!;
        const r = await admin(s, s.adminKey, 'POST', '/v2/repository/models/demo-logistic/load', { parameters: { version: v } });
        expect(r.json).toEqual({ model_name: 'demo-logistic', model_version: v });
        loaded.push(v);
        // A load answers only once every thread serves it: the version is addressable by name on
        // every connection at once (16 connections spread over both threads).
        const named = await Promise.all(Array.from({ length: 16 }, async () => {
          const res = await http.request({ path: `/v2/models/demo-logistic/versions/${v}/ready`, method: 'GET' });
          await res.body.text();
          return res.statusCode;
        }));
        expect(named.every((c) => c === 200), `version ${v} ready on every connection after swap ${i}`).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      running = false;
      await Promise.all(clients);
      for (const st of streams) st.ws.close();
      for (const c of channels) c.close();
      await http.close();
    }
    expect(failures.slice(0, 10)).toEqual([]);
    expect(loaded).toHaveLength(50);
    // Traffic began on the imported version; both swapped-in versions answered.
    expect(seen.has('7.0.0') && seen.has('8.0.0')).toBe(true);
    for (const t of ['http', 'grpc', 'ws'] as const) expect(served[t], t).toBeGreaterThan(50);

    // Every thread served some of it, and the whole-server view adds them up.
    const after = await threadCounts(s.url);
    expect([...after.keys()].sort()).toEqual(['0', '1']);
    for (const t of ['0', '1']) expect(after.get(t)! - (before.get(t) ?? 0), `thread ${t}`).toBeGreaterThan(0);
    const total = [...after.values()].reduce((a, b) => a + b, 0) - [...before.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(served.http + served.grpc + served.ws);

    // Every replaced version was freed on both threads: the weights of logistic versions are
    // shared natively between the threads (one copy per version), and what is still alive is
    // what serves: demo-logistic's active version and the other inline linear demo models
    // (not demo-onnx, pooled, nor demo-bandit, whose state is a state cell of its own).
    const servingLinear = (await (await fetch(`${s.url}/v2/repository/index`, { method: 'POST' })).json() as Array<{ name: string; state: string }>)
      .filter((m) => m.state === 'READY' && m.name !== 'demo-onnx' && m.name !== 'demo-bandit').length;
    await until(() => linearSharedLive() === servingLinear, 5000);
  });

  it('serves a pooled model from both threads through the shared dispatch board', async () => {
    const before = await threadCounts(s.url);
    const pool = new Pool(s.url, { connections: 16 });
    const x = randomF32(100, 7);
    const answers = new Set<number>();
    try {
      await Promise.all(Array.from({ length: 300 }, async () => {
        const res = await pool.request({
          path: '/v2/models/demo-onnx/infer', method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(x) }] }),
        });
        const json = await res.body.json() as any;
        expect(res.statusCode, JSON.stringify(json)).toBe(200);
        answers.add(json.outputs[0].data[0]);
      }));
    } finally {
      await pool.close();
    }
    // One input, one answer, whichever thread batched it.
    expect(answers.size).toBe(1);
    const after = await threadCounts(s.url);
    for (const t of ['0', '1']) expect(after.get(t)! - before.get(t)!, `thread ${t}`).toBeGreaterThan(0);
  });

  it('merges statistics over threads: the stats count every answer of a version, whichever thread gave it', async () => {
    const r = await admin(s, s.adminKey, 'POST', '/v2/repository/models/demo-logistic/load', { parameters: { version: '7.0.0' } });
    expect(r.status).toBe(200);
    const grpcClient = new pkg.inference.GRPCInferenceService(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    const counts = async () => {
      const stats = await (await fetch(`${s.url}/v2/models/demo-logistic/versions/7.0.0/stats`)).json() as any;
      const viaGrpc = await call(grpcClient, 'ModelStatistics', { name: 'demo-logistic', version: '7.0.0' });
      const text = await (await fetch(`${s.url}/metrics`)).text();
      const m = /sluice_inference_requests_total\{model="demo-logistic",version="7\.0\.0",outcome="success"\} (\d+)/.exec(text);
      return {
        http: Number(stats.model_stats[0].inference_stats.success.count),
        grpc: Number(viaGrpc.model_stats[0].inference_stats.success.count),
        metrics: Number(m?.[1]),
        threads: await threadCounts(s.url),
      };
    };
    const before = await counts();
    const pool = new Pool(s.url, { connections: 16 });
    try {
      await Promise.all(Array.from({ length: 400 }, async (_, i) => {
        const x = randomF32(100, i);
        const res = await pool.request({
          path: '/v2/models/demo-logistic/versions/7.0.0/infer', method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(x) }] }),
        });
        expect(res.statusCode).toBe(200);
        await res.body.text();
      }));
    } finally {
      await pool.close();
    }
    const after = await counts();
    grpcClient.close();
    // Both threads took some of the 400 (16 connections), and every view counts all 400.
    for (const t of ['0', '1']) expect(after.threads.get(t)! - before.threads.get(t)!, `thread ${t}`).toBeGreaterThan(0);
    expect(after.http - before.http).toBe(400);
    expect(after.grpc - before.grpc).toBe(400);
    expect(after.metrics - before.metrics).toBe(400);
  });
});
