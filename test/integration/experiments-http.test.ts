/**
 * Experiments end to end over HTTP on a whole server (two I/O threads, PGlite, then PostgreSQL
 * when it is there): create an experiment over two versions of demo-logistic, drive traffic
 * and feedback, and watch the analysis loop stop it for the winner and the registry promote it
 * (audit row with the analysis), the loser archived and the route gone. Also: refusals with
 * stable codes, the results table's figures against a recount, stickiness of a unit across a
 * restart, a manual stop and promote.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type Running } from '../../src/serve.js';
import { demoBody } from '../helpers/http.js';
import { admin, logisticVersion, registerBody, until } from '../helpers/server.js';
import { createPgDatabase, createTestBucket, describeWith, postgresService, s3Service, tempDir } from '../helpers/services.js';
import type { Config } from '../../src/config/index.js';
import { mulberry32 } from '../../src/random.js';

const EXP = '/v1/admin/experiments';

function definition(name: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    model: 'demo-logistic',
    variants: [{ name: 'control', version: '1', weight: 0.5 }, { name: 'treatment', version: '2', weight: 0.5 }],
    primary: { name: 'reward', kind: 'mean' },
    secondary: [{ name: 'conversion', kind: 'rate' }],
    guardrails: [{ name: 'errors', kind: 'error_rate' }, { name: 'latency', kind: 'latency' }],
    min_units: 60,
    auto_promote: true,
    ...extra,
  };
}

function suite(label: string, database: () => Promise<{ url?: string; s3?: Partial<Config>; cleanup: () => Promise<void> }>) {
  describe(`experiments over HTTP (${label})`, () => {
    const adminKey = `sk_test_admin_${randomBytes(24).toString('hex')}`;
    let dir: { dir: string; cleanup: () => Promise<void> };
    let db: { url?: string; s3?: Partial<Config>; cleanup: () => Promise<void> };
    let s: Running;
    let url: string;
    const start = async () => {
      s = await serve({
        dataDir: dir.dir, databaseUrl: db.url, httpPort: 0, grpcPort: 0, workers: 1, adminKey, ioThreads: 2,
        admission: false, reconcileMs: 60_000, experimentIntervalMs: 100, startupModels: ['demo-logistic'], ...db.s3,
      });
      url = `http://127.0.0.1:${s.httpPort}`;
    };
    const call = (method: string, path: string, body?: unknown, key: string | null = adminKey) => admin({ url }, key ?? undefined, method, path, body);
    const infer = async (unit: string) => {
      const r = await fetch(`${url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demoBody(1, 0.1, { parameters: { unit_id: unit } })) });
      const j = (await r.json()) as { model_version: string; parameters: { event_id: string; variant: string } };
      expect(r.status).toBe(200);
      return j;
    };

    beforeAll(async () => {
      dir = await tempDir('sluice-exp-');
      db = await database();
      await start();
      const v2 = logisticVersion(2);
      const reg = registerBody({ manifest: v2.manifest, version: '2' }, v2.payload);
      expect((await admin({ url }, adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', reg.body, reg.headers)).status).toBe(200);
    }, 60_000);
    afterAll(async () => {
      await s?.stop();
      await dir?.cleanup();
      await db?.cleanup();
    });

    it('refuses bad definitions with stable codes, before anything is stored', async () => {
      expect(await call('POST', EXP, definition('x'), null)).toMatchObject({ status: 401, json: { code: 'UNAUTHENTICATED' } });
      const cases: Array<[unknown, number, string, RegExp]> = [
        [[1], 400, 'EXPERIMENT_INVALID', /experiment must be a JSON object/],
        [{ ...definition('x'), extra: 1 }, 400, 'EXPERIMENT_INVALID', /unknown field "extra"/],
        [definition('x', { variants: [{ name: 'a', version: '1', weight: 1 }] }), 400, 'EXPERIMENT_INVALID', /control and at least one treatment/],
        [definition('x', { variants: [{ name: 'a', version: '1', weight: 1 }, { name: 'b', version: '1', weight: 1 }] }), 400, 'EXPERIMENT_INVALID', /distinct versions/],
        [definition('x', { primary: { name: 'r', kind: 'latency' } }), 400, 'EXPERIMENT_INVALID', /primary.kind/],
        [definition('x', { alpha: 0.7 }), 400, 'EXPERIMENT_INVALID', /alpha/],
        [definition('x', { control: 'nobody' }), 400, 'EXPERIMENT_INVALID', /control "nobody"/],
        [definition('x', { variants: [{ name: 'a', version: '1', weight: -1 }, { name: 'b', version: '2', weight: 1 }] }), 400, 'EXPERIMENT_INVALID', /weight/],
        [definition('x', { model: 'no-such-model' }), 404, 'MODEL_NOT_FOUND', /no-such-model/],
        [definition('x', { variants: [{ name: 'a', version: '1', weight: 1 }, { name: 'b', version: '9', weight: 1 }] }), 404, 'VERSION_NOT_FOUND', /9/],
      ];
      for (const [body, status, code, message] of cases) {
        const r = await call('POST', EXP, body);
        expect(r, JSON.stringify(body).slice(0, 120)).toMatchObject({ status, json: { code } });
        expect(r.json.error).toMatch(message);
      }
      expect(await call('GET', `${EXP}/nope`)).toMatchObject({ status: 404, json: { code: 'EXPERIMENT_NOT_FOUND' } });
      expect(await call('GET', `${EXP}/${encodeURIComponent("x'; DROP TABLE experiments;--")}`)).toMatchObject({ status: 400, json: { code: 'NAME_INVALID' } });
      expect((await call('GET', EXP)).json).toEqual([]);
      expect((await call('GET', '/v1/admin/models/demo-logistic/route')).json.route).toBeNull();
    });

    it('runs to a winner: stops, promotes it with the analysis on the audit row, archives the loser', async () => {
      const created = await call('POST', EXP, definition('ab1'));
      expect(created).toMatchObject({ status: 200, json: { name: 'ab1', status: 'running', model: 'demo-logistic' } });
      expect(await call('POST', EXP, definition('ab1'))).toMatchObject({ status: 409, json: { code: 'EXPERIMENT_EXISTS' } });
      expect(await call('POST', EXP, definition('ab2'))).toMatchObject({ status: 409, json: { code: 'EXPERIMENT_RUNNING' } });
      const route = (await call('GET', '/v1/admin/models/demo-logistic/route')).json;
      expect(route).toMatchObject({ owner: 'experiment', route: { assignment: 'hash', salt: 'experiment:ab1' } });
      // A manual route change over it needs force.
      expect(await call('DELETE', '/v1/admin/models/demo-logistic/route', {})).toMatchObject({ status: 409, json: { code: 'ROUTE_OWNED' } });

      // Traffic and feedback: treatment converts at 0.7, control at 0.3, per unit.
      const random = mulberry32(7);
      const variants = new Map<string, string>();
      let over = false;
      for (let round = 0; round < 12 && !over; round++) {
        const events: Array<{ event_id: string; reward: number }> = [];
        for (let i = 0; i < 25; i++) {
          const unit = `user-${round * 25 + i}`;
          const a = await infer(unit);
          // The loop may stop the experiment between two requests: then no route answers.
          if (a.parameters === undefined) {
            over = true;
            break;
          }
          expect(a.model_version).toBe(a.parameters.variant === 'control' ? '1' : '2');
          variants.set(unit, a.parameters.variant);
          events.push({ event_id: a.parameters.event_id, reward: random() < (a.parameters.variant === 'treatment' ? 0.7 : 0.3) ? 1 : 0 });
        }
        if (events.length === 0) break;
        const fb = await call('POST', '/v1/feedback', { events });
        expect(fb.status).toBe(200);
        const show = await call('GET', `${EXP}/ab1`);
        if (show.json.status === 'stopped') break;
      }
      await until(async () => (await call('GET', `${EXP}/ab1`)).json.status === 'stopped', 20_000).catch(async (e) => {
        console.log(JSON.stringify((await call('GET', `${EXP}/ab1/results`)).json, null, 1).slice(0, 6000));
        throw e;
      });
      const shown = (await call('GET', `${EXP}/ab1`)).json;
      expect(shown).toMatchObject({ status: 'stopped', outcome: { action: 'winner', variant: 'treatment' }, promoted_version: '2' });

      // The registry: version 2 is production (its audit row carries the analysis), 1 archived.
      const model = (await call('GET', '/v1/admin/models/demo-logistic')).json;
      expect(model.productionVersion).toBe('2');
      const audit = (await call('GET', '/v1/admin/audit?model=demo-logistic&limit=20')).json as Array<Record<string, any>>;
      const promotion = audit.find((a) => a.action === 'promote' && a.toVersion === '2' && a.toStage === 'production');
      expect(promotion).toBeDefined();
      expect(promotion!.reason).toMatch(/experiment ab1: treatment/);
      expect(promotion!.analysis).toMatchObject({ experiment: 'ab1', decision: { action: 'winner', variant: 'treatment' } });
      expect(promotion!.analysis.metrics[0]).toMatchObject({ name: 'reward', role: 'primary' });
      expect(audit.some((a) => a.action === 'route_clear' && a.routeOwner === 'experiment')).toBe(true);
      const v1 = (await call('GET', '/v1/admin/models/demo-logistic/versions/1')).json;
      expect(v1.stage).toBe('archived');
      expect((await call('GET', '/v1/admin/models/demo-logistic/route')).json.route).toBeNull();
      // The winner serves unversioned requests now, on every thread.
      await until(async () => (await infer('someone')).model_version === '2', 10_000);

      // Results: the units counted are those the test drove up to the stop (the figures are
      // final at the stop: the last round's decisions may have come after it).
      const results = (await call('GET', `${EXP}/ab1/results`)).json;
      const count = (v: string) => [...variants.values()].filter((x) => x === v).length;
      for (const v of results.variants as Array<{ name: string; units: number; with_feedback: number }>) {
        expect(v.units).toBeLessThanOrEqual(count(v.name));
        expect(v.units).toBeGreaterThanOrEqual(count(v.name) - 25);
        expect(v.with_feedback).toBeLessThanOrEqual(v.units);
      }
      expect(results.srm).toMatchObject({ mismatch: false });
      expect(results.metrics.map((m: { name: string }) => m.name)).toEqual(['reward', 'conversion', 'errors', 'latency']);
      const reward = results.metrics[0].treatments[0];
      expect(reward.diff).toBeGreaterThan(0.2);
      expect(reward.seq_p).toBeLessThan(0.05);
      expect(reward.df).toBeGreaterThan(10);
      const latency = results.metrics[3];
      expect(latency.variants.every((v: { n: number }) => v.n > 0)).toBe(true);
      expect(await call('POST', `${EXP}/ab1/promote`, {})).toMatchObject({ status: 409, json: { code: 'EXPERIMENT_STOPPED' } });
    }, 120_000);

    it('keeps a unit on its variant on another replica and across a restart; a weight change moves only the units it must', async () => {
      expect((await call('POST', EXP, definition('ab3', { variants: [{ name: 'old', version: '1', weight: 1 }, { name: 'new', version: '2', weight: 1 }], auto_promote: false, min_units: 100000 }))).status).toBe(200);
      const units = Array.from({ length: 120 }, (_, i) => `sticky-${i}`);
      const before = new Map<string, string>();
      for (const u of units) before.set(u, (await infer(u)).parameters.variant);
      // Every unit the test drove is counted once, in the variant it was given.
      const driven = ['old', 'new'].map((v) => [v, [...before.values()].filter((x) => x === v).length]);
      await until(async () => JSON.stringify((await call('GET', `${EXP}/ab3/results`)).json.variants.map((v: { name: string; units: number }) => [v.name, v.units])) === JSON.stringify(driven), 10_000);
      if (db.url) {
        // A second replica on the same database gives every unit the same variant.
        const dir2 = await tempDir('sluice-exp2-');
        const other = await serve({ dataDir: dir2.dir, databaseUrl: db.url, httpPort: 0, grpcPort: 0, workers: 1, adminKey, reconcileMs: 60_000, experimentIntervalMs: 100, startupModels: ['demo-logistic'], ...db.s3 });
        try {
          for (const u of units) {
            const r = await admin({ url: `http://127.0.0.1:${other.httpPort}` }, adminKey, 'POST', '/v2/models/demo-logistic/infer', demoBody(1, 0.1, { parameters: { unit_id: u } }));
            expect(r.json.parameters.variant, `${u} on the second replica`).toBe(before.get(u));
          }
        } finally {
          await other.stop();
          await dir2.cleanup();
        }
      }
      await s.stop();
      await start();
      await until(async () => (await infer('probe')).parameters.variant !== undefined, 10_000);
      for (const u of units) expect((await infer(u)).parameters.variant, u).toBe(before.get(u));
      // 50/50 -> 80/20: only units of "new" may move, to "old".
      const w = await call('PUT', `${EXP}/ab3/weights`, { weights: { old: 4, new: 1 } });
      expect(w).toMatchObject({ status: 200, json: { changed: true } });
      expect(w.json.weights.old).toBeCloseTo(0.8, 12);
      expect(w.json.weights.new).toBeCloseTo(0.2, 12);
      let moved = 0;
      for (const u of units) {
        const now = (await infer(u)).parameters.variant;
        if (now !== before.get(u)) {
          moved++;
          expect([before.get(u), now]).toEqual(['new', 'old']);
        }
      }
      expect(moved).toBeGreaterThan(0);
      expect(await call('PUT', `${EXP}/ab3/weights`, { weights: { old: 1 } })).toMatchObject({ status: 400, json: { code: 'EXPERIMENT_INVALID' } });
      const results = (await call('GET', `${EXP}/ab3/results`)).json;
      expect(results.periods).toHaveLength(2);
      // Manual stop, then promote by name.
      expect(await call('POST', `${EXP}/ab3/promote`, {})).toMatchObject({ status: 409, json: { code: 'EXPERIMENT_STOPPED' } });
      expect(await call('POST', `${EXP}/ab3/stop`, { reason: 'enough' })).toMatchObject({ status: 200, json: { status: 'stopped', outcome: { action: 'manual', reason: 'enough' } } });
      expect(await call('POST', `${EXP}/ab3/stop`, {})).toMatchObject({ status: 409, json: { code: 'EXPERIMENT_STOPPED' } });
      const p = await call('POST', `${EXP}/ab3/promote`, { variant: 'old' });
      expect(p).toMatchObject({ status: 200, json: { promoted: { version: '1', changed: true, replaced_production: '2' }, archived: [] } });
      const list = (await call('GET', `${EXP}?status=stopped`)).json as Array<{ name: string }>;
      expect(list.map((e) => e.name)).toEqual(['ab1', 'ab3']);
    }, 120_000);

    it('random assignment counts requests as units; bandit assignment has no sample-ratio check and no settable weights', async () => {
      const variants = [{ name: 'a', version: '1', weight: 1 }, { name: 'b', version: '2', weight: 1 }];
      expect((await call('POST', EXP, definition('per-request', { variants, assignment: 'random', auto_promote: false, min_units: 100000 }))).status).toBe(200);
      for (let i = 0; i < 30; i++) await infer('same-user');
      await until(async () => (await call('GET', `${EXP}/per-request/results`)).json.variants.reduce((n: number, v: { units: number }) => n + v.units, 0) === 30, 10_000);
      expect(await call('POST', `${EXP}/per-request/stop`, {})).toMatchObject({ status: 200 });

      expect((await call('POST', EXP, definition('learning', { variants, assignment: 'bandit', bandit: { burn_in: 5 }, auto_promote: false }))).status).toBe(200);
      expect((await call('GET', '/v1/admin/models/demo-logistic/route')).json.route).toMatchObject({ assignment: 'bandit', bandit: { burn_in: 5 } });
      expect(await call('PUT', `${EXP}/learning/weights`, { weights: { a: 1, b: 2 } })).toMatchObject({ status: 400, json: { code: 'EXPERIMENT_INVALID', error: expect.stringMatching(/bandit/) } });
      for (let i = 0; i < 10; i++) expect(['a', 'b']).toContain((await infer(`bandit-user-${i}`)).parameters.variant);
      await until(async () => (await call('GET', `${EXP}/learning/results`)).json.variants.reduce((n: number, v: { units: number }) => n + v.units, 0) === 10, 10_000);
      expect((await call('GET', `${EXP}/learning/results`)).json.srm).toBeNull();
      expect(await call('POST', `${EXP}/learning/stop`, {})).toMatchObject({ status: 200 });
    }, 60_000);
  });
}

suite('pglite', async () => ({ cleanup: async () => {} }));
// Replicas share PostgreSQL and an S3 bucket (the second replica loads version 2 from it).
describeWith(s3Service, 'experiments over HTTP with S3', () => describeWith(postgresService, 'experiments over HTTP on PostgreSQL', () => {
  suite('postgres', async () => {
    const d = await createPgDatabase();
    const b = await createTestBucket();
    const s3: Partial<Config> = { s3Bucket: b.bucket, s3Endpoint: b.endpoint, s3Region: b.region, s3AccessKeyId: b.accessKeyId, s3SecretAccessKey: b.secretAccessKey, s3ForcePathStyle: true };
    return { url: d.url, s3, cleanup: async () => { await d.drop(); await b.cleanup(); } };
  });
}));
