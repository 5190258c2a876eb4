/**
 * Issue #12 over the wire, on two I/O threads: several live versions of one model by name,
 * a route's decisions on HTTP (JSON and binary), gRPC and the WebSocket stream, unit ids from
 * parameters and the Sluice-Unit-Id header, decisions from every thread reaching the log, and
 * 50 route changes under HTTP and gRPC load.
 */
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, fp32Output, fp32Request, type InferenceClient } from '../helpers/grpc.js';
import { randomF32 } from '../helpers/random.js';
import { demoWeights, logistic } from '../helpers/repo.js';
import { admin, logisticVersion, registerBody, startFull, until, type FullServer } from '../helpers/server.js';
import { f32Frame, openStream, packr } from '../helpers/ws.js';
import { packageDefinition, sluiceDefinition } from '../../src/frontend/grpc/definition.js';
import type { Decision } from '../../src/learn/decision.js';
import type { RouteSpec } from '../../src/routing/route.js';

const pkg = grpc.loadPackageDefinition(packageDefinition) as any;
const w = demoWeights();
const scales = new Map<string, number>([['2.0.0', 2], ['3.0.0', 3]]);
const x = randomF32(100, 11);
const body = (params: Record<string, unknown> = {}) => JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(x) }], parameters: params });

function route(variants: Array<[string, string, number]>, salt = 'wire'): RouteSpec {
  return { variants: variants.map(([name, version, weight]) => ({ name, version, weight })), assignment: 'hash', salt, shadows: [], logFeatures: false };
}

describe('routes over the wire, two I/O threads', () => {
  let s: FullServer;
  let initial: string;
  const decisions: Decision[] = [];
  const expected = (version: string) => logistic(x, w.map((q) => q * (scales.get(version) ?? NaN)), 0.25);

  beforeAll(async () => {
    s = await startFull({ ioThreads: 2, workers: 1, admission: false });
    for (const [version, scale] of scales) {
      const v = logisticVersion(scale);
      const { body: b, headers } = registerBody({ manifest: v.manifest, version }, v.payload);
      const r = await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', b, headers);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    }
    initial = s.engine.liveVersions('demo-logistic').default!;
    scales.set(initial, 1);
    s.engine.onDecisions((batch) => decisions.push(...batch));
  });
  afterAll(() => s?.close());

  it('loads versions beside the default, serves each by name, and unloads one alone', async () => {
    for (const v of ['2.0.0', '3.0.0']) {
      const r = await admin(s, s.adminKey, 'POST', '/v2/repository/models/demo-logistic/load', { parameters: { version: v, default: false } });
      expect(r.json).toEqual({ model_name: 'demo-logistic', model_version: v, default: false });
    }
    for (const v of [initial, '2.0.0', '3.0.0']) {
      const r = await fetch(`${s.url}/v2/models/demo-logistic/versions/${v}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() });
      const json = await r.json() as any;
      expect(json.model_version).toBe(v);
      expect(json.outputs[0].data[0]).toBeCloseTo(expected(v), 5);
      expect((await fetch(`${s.url}/v2/models/demo-logistic/versions/${v}/ready`)).status).toBe(200);
    }
    const plain = await (await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() })).json() as any;
    expect(plain.model_version).toBe(initial);
    expect(plain.parameters).toBeUndefined();
    const meta = await (await fetch(`${s.url}/v2/models/demo-logistic`)).json() as any;
    expect(meta.versions.sort()).toEqual([initial, '2.0.0', '3.0.0'].sort());

    const busy = await admin(s, s.adminKey, 'POST', '/v2/repository/models/demo-logistic/unload', { parameters: { version: initial } });
    expect([busy.status, busy.json.code]).toEqual([409, 'VERSION_IN_USE']);
    const r = await admin(s, s.adminKey, 'POST', '/v2/repository/models/demo-logistic/unload', { parameters: { version: '3.0.0' } });
    expect(r.status).toBe(200);
    expect((await fetch(`${s.url}/v2/models/demo-logistic/versions/3.0.0/ready`)).status).toBe(404);
    expect((await fetch(`${s.url}/v2/models/demo-logistic/versions/2.0.0/ready`)).status).toBe(200);
  });

  it('every routed answer carries event_id, variant and propensity, on every transport and thread', async () => {
    await s.engine.setRoute('demo-logistic', route([['control', initial, 0.5], ['treatment', '2.0.0', 0.5]]));
    const check = (version: string, p: Record<string, unknown>, got: number) => {
      expect(p.variant === 'control' ? initial : '2.0.0').toBe(version);
      expect(p.propensity).toBe(0.5);
      expect(String(p.event_id)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(got).toBeCloseTo(expected(version), 5);
    };
    const ids = new Set<string>();
    // HTTP JSON over fresh connections (both threads), unit ids in parameters and in the header.
    for (let i = 0; i < 16; i++) {
      const viaHeader = i % 2 === 0;
      const r = await fetch(`${s.url}/v2/models/demo-logistic/infer`, {
        method: 'POST', headers: { 'content-type': 'application/json', connection: 'close', ...(viaHeader ? { 'sluice-unit-id': `u${i}` } : {}) },
        body: body(viaHeader ? {} : { unit_id: `u${i}` }),
      });
      const json = await r.json() as any;
      check(json.model_version, json.parameters, json.outputs[0].data[0]);
      ids.add(json.parameters.event_id);
    }
    // Sticky over transports: the same unit gets the same variant by header and by parameter.
    const variantOf = async (headers: Record<string, string>, params: Record<string, unknown>) =>
      ((await (await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body(params) })).json()) as any).parameters.variant;
    const v1 = await variantOf({ 'sluice-unit-id': 'alice' }, {});
    for (let i = 0; i < 20; i++) expect(await variantOf({}, { unit_id: 'alice' })).toBe(v1);
    // HTTP binary outputs.
    const bin = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ binary_data_output: true, unit_id: 'bob' }) });
    const buf = Buffer.from(await bin.arrayBuffer());
    const headerLen = Number(bin.headers.get('inference-header-content-length'));
    const head = JSON.parse(buf.subarray(0, headerLen).toString()) as any;
    check(head.model_version, head.parameters, buf.subarray(headerLen).readFloatLE(0));
    // gRPC, with unit_id as a string parameter.
    const client: InferenceClient = new pkg.inference.GRPCInferenceService(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const r = await call(client, 'ModelInfer', fp32Request('demo-logistic', x, 1, true, { parameters: { unit_id: { string_param: 'alice' } } }));
      const p = Object.fromEntries(Object.entries(r.parameters as Record<string, any>).map(([k, v]) => [k, v[v.parameter_choice]]));
      check(r.model_version, p, fp32Output(r)[0]!);
      expect(p.variant).toBe(v1);
      ids.add(p.event_id);
      const bad = call(client, 'ModelInfer', fp32Request('demo-logistic', x, 1, true, { parameters: { unit_id: { string_param: '' } } }));
      await expect(bad).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    } finally {
      client.close();
    }
    // WebSocket stream.
    const st = await openStream(s.url);
    try {
      st.ws.send(f32Frame(1, 'demo-logistic', x, 1, { unit_id: 'alice' }));
      const [a] = await st.next(1);
      const p = (a as any).parameters;
      expect(p.variant).toBe(v1);
      ids.add(p.event_id);
    } finally {
      st.ws.close();
    }
    // Bad unit ids are refused with a code.
    const bad = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ unit_id: { a: 1 } }) });
    expect([bad.status, ((await bad.json()) as any).code]).toEqual([400, 'INVALID_ARGUMENT']);
    // Control characters (NUL would be refused by the decisions table's text column).
    const nul = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ unit_id: 'a\u0000b' }) });
    expect([nul.status, ((await nul.json()) as any).code]).toEqual([400, 'INVALID_ARGUMENT']);
    // Every decision reached the control plane's sink, from both threads.
    const deadline = Date.now() + 5000;
    while ([...ids].some((id) => !decisions.some((d) => d.eventId === id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const id of ids) expect(decisions.some((d) => d.eventId === id), id).toBe(true);
    // A routed request that fails (its inputs do not fit the variant's version) counts for its variant.
    for (let i = 0; i < 4; i++) {
      const wrong = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' },
        body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 99], data: Array.from(x.subarray(0, 99)) }] }) });
      expect(wrong.status).toBe(400);
    }
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/sluice_routed_answers_total\{model="demo-logistic",variant="treatment",version="2\.0\.0"\} [1-9]/);
    const errors = [...metrics.matchAll(/^sluice_routed_errors_total\{model="demo-logistic",variant="(control|treatment)",version="[^"]+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[2]), 0);
    expect(errors).toBe(4);
  });

  it('routed latency per model, variant and version in /metrics: merged over both I/O threads, counts exact', async () => {
    // Variant names of their own: their series start at zero, so counts compare exactly.
    await s.engine.setRoute('demo-logistic', route([['lat-a', initial, 0.5], ['lat-b', '2.0.0', 0.5]], 'latency'));
    const threadCounts = async () => new Map([...(await (await fetch(`${s.url}/metrics`)).text()).matchAll(/^sluice_io_thread_requests_total\{thread="(\d+)"\} (\d+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
    const before = await threadCounts();
    const seen = new Map<string, number>();
    const count = (variant: string, version: string) => seen.set(`${variant}/${version}`, (seen.get(`${variant}/${version}`) ?? 0) + 1);
    // Fresh HTTP connections land on either thread (SO_REUSEPORT); gRPC beside them.
    for (let i = 0; i < 60; i++) {
      const j = await (await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: body({ unit_id: `lat${i}` }) })).json() as any;
      count(j.parameters.variant, j.model_version);
    }
    const client: InferenceClient = new pkg.inference.GRPCInferenceService(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    try {
      for (let i = 0; i < 20; i++) {
        const r = await call(client, 'ModelInfer', fp32Request('demo-logistic', x, 1, true, { parameters: { unit_id: { string_param: `latg${i}` } } }));
        count(r.parameters.variant.string_param, r.model_version);
      }
    } finally {
      client.close();
    }
    const after = await threadCounts();
    for (const t of ['0', '1']) expect(after.get(t)! - (before.get(t) ?? 0), `thread ${t} took some`).toBeGreaterThan(0);
    expect([...seen.keys()].sort()).toEqual([`lat-a/${initial}`, 'lat-b/2.0.0']);

    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(text).toContain('# TYPE sluice_routed_request_duration_seconds summary');
    for (const [key, n] of seen) {
      const [variant, version] = key.split('/') as [string, string];
      const labels = `model="demo-logistic",variant="${variant}",version="${version.replace(/\./g, '\\.')}"`;
      const value = (suffix: string, extra = '') => {
        const m = new RegExp(`^sluice_routed_request_duration_seconds${suffix}\\{${labels}${extra}\\} (\\S+)$`, 'm').exec(text);
        expect(m, `${suffix} ${key}${extra}`).not.toBeNull();
        return Number(m![1]);
      };
      expect(value('_count'), key).toBe(n);
      // The same answers as the routed answers counter, which is kept apart (PlaneRoute.answered).
      expect(Number(new RegExp(`^sluice_routed_answers_total\\{${labels}\\} (\\d+)$`, 'm').exec(text)?.[1]), key).toBe(n);
      const q = ['0.5', '0.9', '0.99', '0.999'].map((quantile) => value('', `,quantile="${quantile}"`));
      // Seconds, from 1 us, ordered, and under the 5 s no answer here comes near.
      expect(q[0]!, key).toBeGreaterThanOrEqual(1e-6);
      for (let i = 1; i < q.length; i++) expect(q[i]!, key).toBeGreaterThanOrEqual(q[i - 1]!);
      expect(q[3]!, key).toBeLessThan(5);
      expect(value('_sum') / n, key).toBeGreaterThan(0);
    }
  });

  it('50 route changes under HTTP and gRPC load: 0 failed requests, every answer from the version it names', async () => {
    const failures: string[] = [];
    let ok = 0;
    let running = true;
    const checkAnswer = (t: string, version: string, got: number) => {
      if (!scales.has(version)) failures.push(`${t}: version ${version}`);
      else if (Math.abs(got - expected(version)) > 1e-5) failures.push(`${t}: ${version} answered ${got}`);
      else ok++;
    };
    const http = new Pool(s.url, { connections: 6 });
    const httpClient = async (k: number) => {
      for (let i = 0; running; i++) {
        const r = await http.request({ path: '/v2/models/demo-logistic/infer', method: 'POST', headers: { 'content-type': 'application/json' }, body: body({ unit_id: `h${k}-${i}` }) });
        const json = await r.body.json() as any;
        if (r.statusCode !== 200) failures.push(`http ${r.statusCode} ${JSON.stringify(json)}`);
        else checkAnswer('http', json.model_version, json.outputs[0].data[0]);
      }
    };
    const channels: InferenceClient[] = Array.from({ length: 4 }, () =>
      new pkg.inference.GRPCInferenceService(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
    const grpcClient = async (k: number) => {
      for (let i = 0; running; i++) {
        try {
          const r = await call(channels[k]!, 'ModelInfer', fp32Request('demo-logistic', x, 1, true, { parameters: { unit_id: { string_param: `g${k}-${i}` } } }));
          checkAnswer('grpc', r.model_version, fp32Output(r)[0]!);
        } catch (e) {
          failures.push(`grpc ${(e as Error).message}`);
        }
      }
    };
    const clients = [...[0, 1, 2, 3, 4, 5].map(httpClient), ...[0, 1, 2, 3].map(grpcClient)];
    try {
      for (let k = 0; k < 50; k++) {
        const wA = (k % 9 + 1) / 10;
        await s.engine.setRoute('demo-logistic', route([['a', initial, wA], ['b', '2.0.0', 1 - wA]], `salt${k}`));
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      running = false;
      await Promise.all(clients);
      await http.close();
      for (const c of channels) c.close();
    }
    expect(failures.slice(0, 10)).toEqual([]);
    expect(ok).toBeGreaterThan(200);
  });

  it('feedback on routed answers is joined to their decisions, stored once, and offered to subscribers', async () => {
    await s.engine.setRoute('demo-logistic', route([['control', initial, 0.5], ['treatment', '2.0.0', 0.5]], 'fb'));
    const joined: Array<{ eventId: string; reward: number; decision: { variant: string } }> = [];
    const stop = s.feedback.subscribe((f) => joined.push(f as never));
    const answers: Array<{ id: string; variant: string; version: string }> = [];
    for (let i = 0; i < 20; i++) {
      const j = await (await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: body({ unit_id: `fb${i}` }) })).json() as any;
      answers.push({ id: j.parameters.event_id, variant: j.parameters.variant, version: j.model_version });
    }
    const events = answers.map((a, i) => ({ event_id: a.id, reward: i % 2 }));
    const r = await admin(s, s.adminKey, 'POST', '/v1/feedback', { events });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    expect(r.json.results.map((x: any) => x.status ?? JSON.stringify(x))).toEqual(answers.map(() => 'accepted'));
    const again = await admin(s, s.adminKey, 'POST', '/v1/feedback', { event_id: answers[0]!.id, reward: 5 });
    expect(again.json.status).toBe('duplicate');
    const rows = await s.registry.db.query<{ event_id: string; variant: string; version: string; reward: number; joined: boolean }>(
      'SELECT event_id, variant, version, reward, joined FROM feedback_events WHERE event_id = ANY($1::text[])', [answers.map((a) => a.id)]);
    expect(rows).toHaveLength(20);
    for (const a of answers) {
      const row = rows.find((x) => x.event_id === a.id)!;
      expect(row).toMatchObject({ variant: a.variant, version: a.version, joined: true });
    }
    expect(rows.find((x) => x.event_id === answers[0]!.id)!.reward).toBe(0);
    stop();
    expect(joined.filter((f) => answers.some((a) => a.id === f.eventId))).toHaveLength(20);
  });

  it('feedback over gRPC (sluice.v1.Feedback) and WebSocket frames, with per-event results', async () => {
    await s.engine.setRoute('demo-logistic', route([['control', initial, 1]], 'fb2'));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const j = await (await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() })).json() as any;
      ids.push(j.parameters.event_id);
    }
    const fpkg = grpc.loadPackageDefinition(sluiceDefinition) as any;
    const fb = new fpkg.sluice.v1.Feedback(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const r = await new Promise<any>((resolve, reject) => fb.Submit({ events: [{ event_id: ids[0], reward: 1 }, { event_id: ids[0], reward: 1 }, { event_id: 'nope', reward: 1 }, { event_id: ids[1], reward: Number.NaN }] },
        (e: Error | null, v: unknown) => (e ? reject(e) : resolve(v))));
      expect(r.results.map((x: any) => x.status || x.code)).toEqual(['accepted', 'duplicate', 'EVENT_NOT_FOUND', 'FEEDBACK_INVALID']);
      await expect(new Promise((resolve, reject) => fb.Submit({ events: [] }, (e: Error | null, v: unknown) => (e ? reject(e) : resolve(v))))).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    } finally {
      fb.close();
    }
    const st = await openStream(s.url);
    try {
      st.ws.send(packr.pack({ type: 'feedback', id: 'f1', events: [{ event_id: ids[2], reward: 0.5 }, { event_id: ids[1], reward: 'x' }] }));
      st.ws.send(packr.pack({ type: 'feedback', id: 'f2', event_id: ids[2], reward: 0.5 }));
      const answers = await st.next(2);
      const byId = new Map(answers.map((a: any) => [a.id, a]));
      expect((byId.get('f1') as any).results.map((x: any) => x.status ?? x.error.code)).toEqual(['accepted', 'FEEDBACK_INVALID']);
      expect((byId.get('f2') as any).results.map((x: any) => x.status)).toEqual(['duplicate']);
    } finally {
      st.ws.close();
    }
  });
  it('logs each request\'s own features, answered at once (inline) or later (pooled), under concurrent requests', async () => {
    // An answer given at once logs the request's features in place, one given later (the
    // pooled model) from a copy taken when it was routed: either way, its own request's.
    for (const model of ['demo-logistic', 'demo-onnx']) {
      const production = s.engine.liveVersions(model).default!;
      const variants = [{ name: 'logged', version: production, weight: 1 }];
      expect((await admin(s, s.adminKey, 'PUT', `/v1/admin/models/${model}/route`, { variants, assignment: 'random', log_features: true })).status).toBe(200);
      await until(async () => ((await (await fetch(`${s.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() })).json()) as any).parameters?.variant === 'logged', 10_000);
      const inputs = Array.from({ length: 64 }, (_, i) => randomF32(100, 1000 + i));
      const answers = await Promise.all(inputs.map(async (f) => {
        const r = await fetch(`${s.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(f) }] }) });
        expect(r.status).toBe(200);
        return ((await r.json()) as any).parameters.event_id as string;
      }));
      const byId = new Map<string, Decision>();
      await until(() => {
        for (const d of decisions) byId.set(d.eventId, d);
        return answers.every((id) => byId.has(id));
      }, 10_000);
      answers.forEach((id, i) => expect(Array.from(byId.get(id)!.features!), `${model} request ${i}`).toEqual(Array.from(inputs[i]!)));
      expect((await admin(s, s.adminKey, 'DELETE', `/v1/admin/models/${model}/route`)).status).toBe(200);
    }
  });
});
