/**
 * The route admin API (GET|PUT|DELETE /v1/admin/models/{m}/route) on a whole server with two
 * I/O threads, on PGlite and PostgreSQL: access (401/403), refusals (400/404/405), a round trip
 * with its audit rows, and the same answers from every I/O thread (the worker thread forwards
 * route calls to the main thread, where the engine prepares versions).
 */
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoBody, postJson } from '../helpers/http.js';
import { admin, logisticVersion, registerBody, startFull, type FullServer } from '../helpers/server.js';
import { createPgDatabase, describeWith, postgresService } from '../helpers/services.js';

const ROUTE = '/v1/admin/models/demo-logistic/route';
const body = (extra: Record<string, unknown> = {}) => ({
  variants: [{ name: 'control', version: '1', weight: 9 }, { name: 'treatment', version: '2', weight: 1 }],
  assignment: 'hash',
  ...extra,
});

/** Per-thread inference counters from /metrics. */
async function threadCounts(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^sluice_io_thread_requests_total\{thread="(\d+)"\} (\d+)$/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

async function json(c: Client, method: 'GET' | 'PUT' | 'POST', path: string, key: string, payload?: unknown): Promise<{ status: number; json: any }> {
  const r = await c.request({
    method, path,
    headers: { authorization: `Bearer ${key}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  return { status: r.statusCode, json: await r.body.json() };
}

function suite(label: string, config: () => Promise<{ overrides: Record<string, unknown>; cleanup: () => Promise<void> }>) {
  describe(`route admin API (${label})`, () => {
    let s: FullServer;
    let predictKey: string;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      const c = await config();
      cleanup = c.cleanup;
      s = await startFull({ ioThreads: 2, admission: false, ...c.overrides });
      predictKey = (await admin(s, s.adminKey, 'POST', '/v1/admin/keys', { name: 'svc', scopes: ['predict'] })).json.secret;
      const v2 = logisticVersion(2);
      const reg = registerBody({ manifest: v2.manifest, version: '2' }, v2.payload);
      expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', reg.body, reg.headers)).status).toBe(200);
    });
    afterAll(async () => {
      await s?.close();
      await cleanup?.();
    });

    it('needs an admin key: 401 without one, 403 with a predict key, for every method', async () => {
      for (const [method, payload] of [['GET', undefined], ['PUT', body()], ['DELETE', {}]] as const) {
        const none = await admin(s, undefined, method, ROUTE, payload);
        expect(none, `${method} without a key`).toMatchObject({ status: 401, json: { code: 'UNAUTHENTICATED' } });
        const wrong = await admin(s, predictKey, method, ROUTE, payload);
        expect(wrong, `${method} with a predict key`).toMatchObject({ status: 403, json: { code: 'PERMISSION_DENIED' } });
      }
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json.route).toBeNull(); // nothing was changed
    });

    it('refuses bad routes (400 ROUTE_INVALID naming the field), bad JSON, bad names, unknown models and versions (404)', async () => {
      const bad = await admin(s, s.adminKey, 'PUT', ROUTE, body({ variants: [{ name: 'a', version: '1', weight: 1 }, { name: 'b', version: '2', weight: -1 }] }));
      expect(bad).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID', error: 'variants[1].weight must be a finite number > 0' } });
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, body({ assignment: 'sticky' }))).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID', error: expect.stringMatching(/^assignment must be/) } });
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, body({ extra: true }))).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID', error: expect.stringContaining('"extra"') } });
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, {})).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID', error: expect.stringMatching(/^variants is required/) } });
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, [body()])).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID', error: 'route must be a JSON object' } });
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, Buffer.from('{"variants": ['), { 'content-type': 'application/json' })).toMatchObject({ status: 400, json: { code: 'MALFORMED_REQUEST' } });
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, body({ reason: 7 }))).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', error: expect.stringContaining('reason') } });
      const evil = `/v1/admin/models/${encodeURIComponent("x'; DROP TABLE routes;--")}/route`;
      expect(await admin(s, s.adminKey, 'GET', evil)).toMatchObject({ status: 400, json: { code: 'NAME_INVALID' } });
      for (const [method, payload] of [['GET', undefined], ['PUT', body()], ['DELETE', {}]] as const) {
        expect(await admin(s, s.adminKey, method, '/v1/admin/models/no-such-model/route', payload), method).toMatchObject({ status: 404, json: { code: 'MODEL_NOT_FOUND' } });
      }
      const unknownVersion = await admin(s, s.adminKey, 'PUT', ROUTE, body({ shadows: [{ version: '9.9.9', fraction: 0.5 }] }));
      expect(unknownVersion).toMatchObject({ status: 404, json: { code: 'VERSION_NOT_FOUND', error: expect.stringContaining('9.9.9') } });
      const post = await admin(s, s.adminKey, 'POST', ROUTE, body());
      expect(post).toMatchObject({ status: 405, json: { code: 'METHOD_NOT_ALLOWED', error: 'allowed: GET, PUT, DELETE' } });
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json).toEqual({ model: 'demo-logistic', route: null });
    });

    it('round trip: PUT puts the route in force (audited by key name), GET shows it, DELETE falls back to production', async () => {
      const put = await admin(s, s.adminKey, 'PUT', ROUTE, body({ shadows: [{ version: '2', fraction: 0.25 }], reason: 'ten percent canary' }));
      expect(put.status, JSON.stringify(put.json)).toBe(200);
      const route = {
        variants: [{ name: 'control', version: '1', weight: 0.9 }, { name: 'treatment', version: '2', weight: 0.1 }],
        assignment: 'hash', salt: 'demo-logistic', shadows: [{ version: '2', fraction: 0.25 }], log_features: false,
      };
      expect(put.json).toMatchObject({ model: 'demo-logistic', route, changed: true, audit_id: expect.any(Number) });
      const generation = put.json.generation as number;
      const got = await admin(s, s.adminKey, 'GET', ROUTE);
      expect(got).toMatchObject({ status: 200, json: { model: 'demo-logistic', route, generation, updated_by: 'admin' } });
      expect(Date.parse(got.json.updated_at)).not.toBeNaN();
      // Putting what is in force changes nothing.
      expect((await admin(s, s.adminKey, 'PUT', ROUTE, got.json.route)).json).toMatchObject({ changed: false, generation, audit_id: null });

      const del = await admin(s, s.adminKey, 'DELETE', `${ROUTE}?reason=${encodeURIComponent('canary over')}`);
      expect(del).toMatchObject({ status: 200, json: { model: 'demo-logistic', route: null, generation: generation + 1, changed: true } });
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json).toEqual({ model: 'demo-logistic', route: null });
      expect((await admin(s, s.adminKey, 'DELETE', ROUTE, { reason: 'again' })).json).toMatchObject({ changed: false });
      // Unversioned requests still get the production version.
      expect((await postJson(`${s.url}/v2/models/demo-logistic/infer`, demoBody())).json.model_version).toBe('1');

      const audit = (await admin(s, s.adminKey, 'GET', '/v1/admin/audit?model=demo-logistic&limit=2')).json;
      expect(audit.map((a: { action: string; actor: string; reason: string; routeGeneration: number }) => [a.action, a.actor, a.reason, a.routeGeneration]))
        .toEqual([['route_clear', 'admin', 'canary over', generation + 1], ['route_set', 'admin', 'ten percent canary', generation]]);
      expect(audit[1].route).toEqual(route);
    });

    it('answers route calls on every I/O thread (connections on both threads, each reading and setting the route)', async () => {
      const before = await threadCounts(s.url);
      const clients = Array.from({ length: 16 }, () => new Client(s.url, { pipelining: 0 }));
      try {
        const answers = await Promise.all(clients.map(async (c, i) => {
          // An inference first: it counts on this connection's thread, showing which threads served.
          const infer = await json(c, 'POST', '/v2/models/demo-logistic/infer', s.adminKey, demoBody());
          expect(infer.status).toBe(200);
          const put = await json(c, 'PUT', ROUTE, s.adminKey, body({ salt: 'threads', reason: `client ${i}` }));
          expect(put.status, JSON.stringify(put.json)).toBe(200);
          const got = await json(c, 'GET', ROUTE, s.adminKey);
          expect(got.status, JSON.stringify(got.json)).toBe(200);
          return [put.json, got.json];
        }));
        const after = await threadCounts(s.url);
        for (const t of ['0', '1']) expect(after.get(t)! - (before.get(t) ?? 0), `thread ${t} served some connections`).toBeGreaterThan(0);
        // Exactly one PUT changed the route; every GET saw the one route in force.
        expect(answers.filter(([p]) => p.changed)).toHaveLength(1);
        const generations = new Set(answers.map(([, g]) => g.generation));
        expect(generations.size).toBe(1);
        for (const [, g] of answers) expect(g.route).toMatchObject({ salt: 'threads', variants: [{ name: 'control' }, { name: 'treatment' }] });
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });
  });
}

suite('embedded PGlite', async () => ({ overrides: {}, cleanup: async () => undefined }));

describeWith(postgresService, 'PostgreSQL', () => {
  suite('PostgreSQL', async () => {
    const db = await createPgDatabase();
    return { overrides: { databaseUrl: db.url }, cleanup: db.drop };
  });
});
