/**
 * Overload shedding (admission control) over real sockets: a slow pooled fixture model offered
 * far more than it can serve, on HTTP, gRPC and the WebSocket stream.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcServer } from '../../src/frontend/grpc/server.js';
import { startServer, rawRequest, type TestServer } from '../helpers/http.js';
import { call, inferenceClient, rawInferClient, type InferenceClient } from '../helpers/grpc.js';
import { f32Frame, openStream } from '../helpers/ws.js';
import { tempRepo, writeFixture, writeLinear } from '../helpers/repo.js';

const body = (v: number) => JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [v, v, v, v] }] });

interface Outcome { status: number; ms: number; code?: string; retryAfter: string | null; value?: number }

async function infer(url: string, v: number, timeoutMs: number): Promise<Outcome> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v2/models/slow/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'timeout-ms': String(timeoutMs) }, body: body(v) });
  const json = (await res.json()) as { code?: string; outputs?: Array<{ data: number[] }> };
  return { status: res.status, ms: performance.now() - t0, code: json.code, retryAfter: res.headers.get('retry-after'), value: json.outputs?.[0]?.data[0] };
}

describe('overload: adaptive admission control', () => {
  let repo: Awaited<ReturnType<typeof tempRepo>>;
  let s: TestServer;

  beforeAll(async () => {
    repo = await tempRepo();
    // 20 ms per request, one at a time (one worker, batches of one): about 50 requests/s. The
    // batcher's own queue bound is far away: only admission control can refuse.
    await writeFixture(repo.root, 'slow', '1', { op: 'sum', delay_us: 20_000 }, { maxBatch: 1, queue: 100_000 });
    // An inline model beside it: its requests wait in no queue of the engine's.
    await writeLinear(repo.root, 'quick', '1', { features: 4, dispatch: 'inline' });
    s = await startServer({ modelRepository: repo.root, workers: 1, allowFixtureModels: true, admissionMaxInFlight: 32, admissionMinInFlight: 2 });
  });
  afterAll(async () => {
    await s?.close();
    await repo?.cleanup();
  });

  it('at several times capacity, refuses some requests at once (503 OVERLOADED, Retry-After) and keeps the accepted ones within their deadline; health, metrics and an inline model answer meanwhile', async () => {
    const deadlineMs = 3_000;
    const pending: Array<Promise<Outcome>> = [];
    const quick: Array<Promise<number>> = [];
    const quickBody = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    const side: Array<Promise<{ what: string; status: number; ms: number }>> = [];
    const limits: number[] = [];
    const timed = async (what: string, path: string) => {
      const t0 = performance.now();
      const res = await fetch(`${s.url}${path}`);
      const text = await res.text();
      if (what === 'metrics') {
        const m = /^sluice_admission_in_flight_limit\{thread="0"\} (\d+)/m.exec(text);
        if (m) limits.push(Number(m[1]));
      }
      return { what, status: res.status, ms: performance.now() - t0 };
    };
    // Open loop: 200 requests/s (4x capacity) for 3 s, each with a 3 s deadline (the first 32
    // admitted queue for about 32 x 20 ms before the limit adapts).
    for (let i = 0; i < 60; i++) {
      for (let k = 0; k < 10; k++) pending.push(infer(s.url, (i * 10 + k) % 7, deadlineMs));
      if (i % 10 === 5) side.push(timed('live', '/v2/health/live'), timed('metrics', '/metrics'));
      // 20/s to the inline model: the pooled model's in-flight limit is not its to meet.
      quick.push(fetch(`${s.url}/v2/models/quick/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: quickBody }).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      }));
      await new Promise((r) => setTimeout(r, 50));
    }
    const outcomes = await Promise.all(pending);
    const ok = outcomes.filter((o) => o.status === 200);
    const refused = outcomes.filter((o) => o.status === 503);
    // Every answer is a success or a coded refusal: none is a deadline failure or anything else.
    expect(outcomes.filter((o) => o.status !== 200 && o.status !== 503)).toEqual([]);
    expect(refused.length).toBeGreaterThan(100);
    expect(ok.length).toBeGreaterThan(20);
    for (const r of refused) {
      expect(r.code).toBe('OVERLOADED');
      expect(r.retryAfter).toBe('1');
    }
    // Accepted requests finished within their deadline, with the right answer.
    for (const [i, o] of ok.entries()) {
      expect(o.ms, `accepted request ${i}`).toBeLessThan(deadlineMs);
      expect(Number.isInteger(o.value! / 4)).toBe(true);
    }
    // Refusals are quick (generous for a shared VM; the accepted ones wait behind 20 ms work).
    const sorted = refused.map((r) => r.ms).sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length / 2)]!).toBeLessThan(250);
    // Health and metrics stayed answerable, and the limit adapted below its ceiling.
    const sideResults = await Promise.all(side);
    for (const r of sideResults) {
      expect(r.status, r.what).toBe(200);
      expect(r.ms, r.what).toBeLessThan(1_000);
    }
    expect(Math.min(...limits)).toBeLessThan(32);
    // The inline model was answered throughout, while the pooled one was refused.
    expect((await Promise.all(quick)).filter((status) => status !== 200)).toEqual([]);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/sluice_errors_total\{code="OVERLOADED"\} [1-9]/);
    expect(metrics).toMatch(/sluice_admission_requests_total\{decision="refused",reason="in_flight"\} [1-9]/);
  }, 30_000);
});

describe('overload: refusals before the body, on every transport', () => {
  let repo: Awaited<ReturnType<typeof tempRepo>>;
  let s: TestServer;
  let g: GrpcServer;
  let address: string;

  beforeAll(async () => {
    repo = await tempRepo();
    await writeFixture(repo.root, 'slow', '1', { op: 'sum', delay_us: 1_000_000 }, { maxBatch: 1, queue: 100 });
    // Two requests in flight at most: a third is refused whatever the delays measure.
    s = await startServer({ modelRepository: repo.root, workers: 1, allowFixtureModels: true, admissionMaxInFlight: 2, admissionMinInFlight: 2 });
    g = new GrpcServer(s.engine);
    address = `127.0.0.1:${await g.listen('127.0.0.1', 0)}`;
  });
  afterAll(async () => {
    await g?.close(1000);
    await s?.close();
    await repo?.cleanup();
  });

  /** Fills the in-flight limit with two slow requests; resolves when they are answered. */
  async function fill(): Promise<() => Promise<unknown>> {
    const busy = [infer(s.url, 1, 10_000), infer(s.url, 2, 10_000)];
    await new Promise((r) => setTimeout(r, 100));
    expect(s.engine.admission.inFlight).toBe(2);
    return () => Promise.all(busy);
  }

  it('HTTP: answers 503 OVERLOADED before the body has been sent, and the connection stays usable', async () => {
    const done = await fill();
    // Headers only: the body never comes, yet the refusal does.
    const early = await rawRequest(s.port, ['POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n'], 300);
    expect(early).toMatch(/^HTTP\/1\.1 503 /);
    expect(early).toMatch(/\r\nRetry-After: 1\r\n/i);
    expect(early).toContain('"code":"OVERLOADED"');
    // A refused request's body, then a health check, on the same connection: both answered.
    const b = body(3);
    const both = await rawRequest(s.port, [`POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n`], 300);
    expect(both).toMatch(/^HTTP\/1\.1 503 /);
    expect(both).toMatch(/HTTP\/1\.1 200 OK[\s\S]*"live":true/);
    // KServe v1 predict passes the same admission.
    const v1 = await fetch(`${s.url}/v1/models/slow:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ instances: [[1, 2, 3, 4]] }) });
    expect(v1.status).toBe(503);
    expect(((await v1.json()) as { code: string }).code).toBe('OVERLOADED');
    await done();
    // Once the slow ones finish, requests are admitted again.
    const after = await infer(s.url, 1, 10_000);
    expect(after.status).toBe(200);
    expect(s.engine.admission.inFlight).toBe(0);
  }, 20_000);

  it('gRPC: ModelInfer is refused with UNAVAILABLE, sluice-code OVERLOADED and retry-after', async () => {
    const done = await fill();
    const client = rawInferClient(address);
    try {
      const req = Buffer.from('not even protobuf: refused before it is decoded');
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.infer(req, (e) => resolve(e)));
      expect(err?.code).toBe(grpc.status.UNAVAILABLE);
      expect(err?.metadata.get('sluice-code')).toEqual(['OVERLOADED']);
      expect(err?.metadata.get('retry-after')).toEqual(['1']);
      await done();
    } finally {
      client.close();
    }
  }, 20_000);

  it('WebSocket stream: an over-limit frame is answered with code OVERLOADED and its id', async () => {
    const done = await fill();
    const stream = await openStream(s.url);
    stream.ws.send(f32Frame('r1', 'slow', new Float32Array([1, 2, 3, 4]), 1, {}, 'x'));
    const [a] = await stream.next(1);
    expect(a).toMatchObject({ id: 'r1', code: 'OVERLOADED' });
    const ws = stream.ws;
    ws.close();
    await done();
  }, 20_000);
});

describe('overload: refusals from inside the engine say when to come back', () => {
  let repo: Awaited<ReturnType<typeof tempRepo>>;
  let s: TestServer;
  let g: GrpcServer;
  let client: InferenceClient;

  beforeAll(async () => {
    repo = await tempRepo();
    // One worker, two slots and a queue of one: a fourth request at once finds the queue full.
    await writeFixture(repo.root, 'slow', '1', { op: 'sum', delay_us: 400_000 }, { maxBatch: 1, queue: 1 });
    s = await startServer({ modelRepository: repo.root, workers: 1, allowFixtureModels: true, admissionRetryAfterS: 7 });
    g = new GrpcServer(s.engine);
    client = inferenceClient(`127.0.0.1:${await g.listen('127.0.0.1', 0)}`);
  });
  afterAll(async () => {
    client?.close();
    await g?.close(1000);
    await s?.close();
    await repo?.cleanup();
  });

  async function fillQueue(): Promise<() => Promise<unknown>> {
    const busy = [infer(s.url, 1, 10_000), infer(s.url, 2, 10_000), infer(s.url, 3, 10_000)];
    const until = Date.now() + 5_000;
    while (s.engine.inFlight < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    expect(s.engine.inFlight).toBe(3);
    return () => Promise.all(busy);
  }

  it('HTTP: Retry-After is SLUICE_ADMISSION_RETRY_AFTER_S, not a fixed 1', async () => {
    const done = await fillQueue();
    const r = await infer(s.url, 4, 10_000);
    expect([r.status, r.code, r.retryAfter]).toEqual([503, 'OVERLOADED', '7']);
    await done();
  });

  it('gRPC ModelInfer: UNAVAILABLE with sluice-code OVERLOADED and retry-after', async () => {
    const done = await fillQueue();
    const err = await call(client, 'ModelInfer', { model_name: 'slow', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] })
      .then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.metadata.get('sluice-code')).toEqual(['OVERLOADED']);
    expect(err?.metadata.get('retry-after')).toEqual(['7']);
    await done();
  });
});
