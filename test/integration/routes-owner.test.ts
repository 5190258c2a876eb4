/**
 * Route owners over the admin API (PUT|DELETE|GET /v1/admin/models/{m}/route) on a whole server
 * with two I/O threads, on PGlite and PostgreSQL: `owner` accepted and shown, bad owners and
 * flags refused with their codes, a manual change over an experiment's or a deployment's route
 * refused with 409 ROUTE_OWNED (before any version it names is loaded) unless it says `force`,
 * which the audit log records.
 */
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoBody, postJson } from '../helpers/http.js';
import { admin, logisticVersion, registerBody, startFull, type FullServer } from '../helpers/server.js';
import { createPgDatabase, describeWith, postgresService } from '../helpers/services.js';

const MODEL = 'demo-logistic';
const ROUTE = `/v1/admin/models/${MODEL}/route`;
const route = (salt: string, versions = ['1', '2']) => ({
  variants: versions.map((v, i) => ({ name: `v${i}`, version: v, weight: 1 })),
  assignment: 'hash',
  salt,
});

function suite(label: string, config: () => Promise<{ overrides: Record<string, unknown>; cleanup: () => Promise<void> }>) {
  describe(`route owners over HTTP (${label})`, () => {
    let s: FullServer;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      const c = await config();
      cleanup = c.cleanup;
      s = await startFull({ ioThreads: 2, admission: false, ...c.overrides });
      for (const v of [2, 3]) {
        const lv = logisticVersion(v);
        const reg = registerBody({ manifest: lv.manifest, version: String(v) }, lv.payload);
        expect((await admin(s, s.adminKey, 'POST', `/v1/admin/models/${MODEL}/versions`, reg.body, reg.headers)).status).toBe(200);
      }
    });
    afterAll(async () => {
      await s?.close();
      await cleanup?.();
    });

    it('a route is manual by default; owner is taken from the body, shown by GET and audited', async () => {
      const put = await admin(s, s.adminKey, 'PUT', ROUTE, { ...route('manual-1'), reason: 'by hand' });
      expect(put).toMatchObject({ status: 200, json: { owner: 'manual', changed: true, forced_over: null } });
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json).toMatchObject({ owner: 'manual', route: { salt: 'manual-1' } });

      const exp = await admin(s, s.adminKey, 'PUT', ROUTE, { ...route('exp-1'), owner: 'experiment', reason: 'exp 1 starts' });
      expect(exp).toMatchObject({ status: 200, json: { owner: 'experiment', changed: true, generation: put.json.generation + 1, forced_over: null } });
      const got = await admin(s, s.adminKey, 'GET', ROUTE);
      expect(got).toMatchObject({ status: 200, json: { model: MODEL, owner: 'experiment', generation: exp.json.generation, updated_by: 'admin', route: { salt: 'exp-1' } } });
      // The `route` of GET stays the route JSON alone: a valid PUT body.
      expect(Object.keys(got.json.route).sort()).toEqual(['assignment', 'log_features', 'salt', 'shadows', 'variants']);
      const audit = (await admin(s, s.adminKey, 'GET', `/v1/admin/audit?model=${MODEL}&limit=1`)).json;
      expect(audit[0]).toMatchObject({ action: 'route_set', reason: 'exp 1 starts', routeOwner: 'experiment', forcedOver: null, routeGeneration: exp.json.generation });
    });

    it('refuses unknown owners (400 ROUTE_INVALID) and force flags that are not booleans (400 INVALID_ARGUMENT)', async () => {
      const before = (await admin(s, s.adminKey, 'GET', ROUTE)).json;
      for (const owner of ['bandit', 'Experiment', '', 3, null, ['manual']]) {
        const r = await admin(s, s.adminKey, 'PUT', ROUTE, { ...route('x'), owner });
        expect(r, JSON.stringify(owner)).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID', error: 'owner must be one of "manual", "experiment", "deployment"' } });
      }
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, { ...route('x'), owner: 'experiment', force: 'yes' })).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', error: 'force must be true or false' } });
      expect(await admin(s, s.adminKey, 'DELETE', ROUTE, { force: 1 })).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT', error: 'force must be true or false' } });
      expect(await admin(s, s.adminKey, 'DELETE', `${ROUTE}?force=yes`)).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT' } });
      expect(await admin(s, s.adminKey, 'DELETE', ROUTE, { owner: 'robot' })).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID' } });
      // A bad route is still the route's fault first, whatever else the body holds.
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, { assignment: 'hash', owner: 'robot' })).toMatchObject({ status: 400, json: { code: 'ROUTE_INVALID', error: expect.stringMatching(/^variants is required/) } });
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json).toEqual(before);
    });

    it('answers 409 ROUTE_OWNED to a manual PUT or DELETE over an experiment\'s route, loading nothing and changing nothing', async () => {
      const before = (await admin(s, s.adminKey, 'GET', ROUTE)).json;
      expect(before.owner).toBe('experiment');
      expect(s.engine.liveVersions(MODEL).versions).not.toContain('3');
      // Names version 3, registered but not loaded: the refusal comes before any loading.
      const put = await admin(s, s.adminKey, 'PUT', ROUTE, { ...route('ops', ['1', '3']), reason: 'oops' });
      expect(put).toMatchObject({ status: 409, json: { code: 'ROUTE_OWNED', error: expect.stringContaining('"force": true') } });
      expect(s.engine.liveVersions(MODEL).versions).not.toContain('3');
      for (const body of [undefined, {}, { force: false }]) {
        expect(await admin(s, s.adminKey, 'DELETE', ROUTE, body), JSON.stringify(body)).toMatchObject({ status: 409, json: { code: 'ROUTE_OWNED' } });
      }
      expect(await admin(s, s.adminKey, 'PUT', ROUTE, { ...before.route, owner: 'deployment' })).toMatchObject({ status: 409, json: { code: 'ROUTE_OWNED' } });
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json).toEqual(before);
      const audit = (await admin(s, s.adminKey, 'GET', `/v1/admin/audit?model=${MODEL}&limit=1`)).json;
      expect(audit[0]).toMatchObject({ routeGeneration: before.generation }); // nothing audited either
      // The experiment's own owner may still change it, from any thread (fresh connections).
      const clients = Array.from({ length: 4 }, () => new Client(s.url, { pipelining: 0 }));
      try {
        for (const [i, c] of clients.entries()) {
          const r = await c.request({
            method: 'PUT', path: ROUTE, headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({ ...route(`exp-${i + 2}`), owner: 'experiment' }),
          });
          expect(r.statusCode).toBe(200);
          await r.body.dump();
          const manual = await c.request({ method: 'DELETE', path: ROUTE, headers: { authorization: `Bearer ${s.adminKey}` } });
          expect(manual.statusCode).toBe(409);
          expect(await manual.body.json()).toMatchObject({ code: 'ROUTE_OWNED' });
        }
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });

    it('force replaces or clears it (audited with the owner it overrode); traffic follows the forced route', async () => {
      const put = await admin(s, s.adminKey, 'PUT', ROUTE, { ...route('ops', ['1', '3']), force: true, reason: 'take over' });
      expect(put).toMatchObject({ status: 200, json: { owner: 'manual', changed: true, forced_over: 'experiment' } });
      expect(s.engine.liveVersions(MODEL).versions).toContain('3');
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json).toMatchObject({ owner: 'manual', generation: put.json.generation, route: { salt: 'ops' } });
      const answers = new Set<string>();
      for (let i = 0; i < 40; i++) answers.add((await postJson(`${s.url}/v2/models/${MODEL}/infer`, demoBody())).json.model_version);
      expect([...answers].every((v) => v === '1' || v === '3')).toBe(true);

      await admin(s, s.adminKey, 'PUT', ROUTE, { ...route('canary'), owner: 'deployment' });
      const del = await admin(s, s.adminKey, 'DELETE', `${ROUTE}?force=true&reason=${encodeURIComponent('stop the canary')}`);
      expect(del).toMatchObject({ status: 200, json: { route: null, owner: null, changed: true, forced_over: 'deployment' } });
      expect((await admin(s, s.adminKey, 'GET', ROUTE)).json).toEqual({ model: MODEL, route: null });
      expect((await postJson(`${s.url}/v2/models/${MODEL}/infer`, demoBody())).json.model_version).toBe('1');

      const audit = (await admin(s, s.adminKey, 'GET', `/v1/admin/audit?model=${MODEL}&limit=3`)).json;
      expect(audit.map((a: { action: string; reason: string; routeOwner: string; forcedOver: string | null }) => [a.action, a.reason, a.routeOwner, a.forcedOver])).toEqual([
        ['route_clear', 'stop the canary', 'manual', 'deployment'],
        ['route_set', '', 'deployment', null],
        ['route_set', 'take over', 'manual', 'experiment'],
      ]);
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
