import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';
import { demoBody, postJson } from '../helpers/http.js';
import { admin, logisticVersion, registerBody, startFull, until, type FullServer } from '../helpers/server.js';
import { createPgDatabase, describeWith, pgServerService, postgresService, startPrivatePostgres, tempDir } from '../helpers/services.js';

/** `node dist/src/main.js` with the given environment and one worker; resolves once it serves. */
async function replica(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const p = await startSluiceProcess({ env: { SLUICE_WORKERS: '1', ...env } });
  return { child: p.child, url: p.http };
}

const version = async (url: string) => (await postJson(`${url}/v2/models/demo-logistic/infer`, demoBody())).json.model_version as string;

describeWith(postgresService, 'two replicas on one PostgreSQL', () => {
  let a: { child: ChildProcess; url: string };
  let b: { child: ChildProcess; url: string };
  let cleanup: () => Promise<void>;
  const adminKey = `sk_replicas_${randomBytes(24).toString('hex')}`;
  let env: Record<string, string>;

  beforeAll(async () => {
    const db = await createPgDatabase();
    const dir = await tempDir('sluice-replicas-');
    cleanup = async () => {
      await db.drop();
      await dir.cleanup();
    };
    // Shared database; a shared artifact directory stands in for S3 between the two.
    env = { SLUICE_DATABASE_URL: db.url, SLUICE_DATA_DIR: dir.dir, SLUICE_ADMIN_KEY: adminKey, SLUICE_REGISTRY_RECONCILE_MS: '60000' };
    a = await replica(env);
    b = await replica(env);
  });
  afterAll(async () => {
    for (const r of [a, b]) r?.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await cleanup();
  });

  it('a promotion and a rollback made on one replica reach the other within 1 s', async () => {
    const v2 = logisticVersion(2);
    const { body, headers } = registerBody({ manifest: v2.manifest, version: '2' }, v2.payload);
    expect((await admin(a, adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', body, headers)).status).toBe(200);
    expect(await version(b.url)).toBe('1');
    const t0 = performance.now();
    expect((await admin(a, adminKey, 'POST', '/v1/admin/models/demo-logistic/promote', { version: '2' })).status).toBe(200);
    await until(async () => (await version(b.url)) === '2', 5000);
    expect(performance.now() - t0).toBeLessThan(1000);
    const t1 = performance.now();
    expect((await admin(b, adminKey, 'POST', '/v1/admin/models/demo-logistic/rollback', {})).status).toBe(200);
    await until(async () => (await version(a.url)) === '1', 5000);
    expect(performance.now() - t1).toBeLessThan(1000);
  });
  it('a route set on one replica reaches the other; a unit gets the same variant on both, 1,000 times, and after a restart', async () => {
    const variantOf = async (url: string, unit: string) => {
      const r = await fetch(`${url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'sluice-unit-id': unit }, body: JSON.stringify(demoBody()) });
      const j = await r.json() as { model_version: string; parameters?: { variant?: string; propensity?: number } };
      return `${j.parameters?.variant}@${j.model_version}:${j.parameters?.propensity}`;
    };
    const put = await admin(a, adminKey, 'PUT', '/v1/admin/models/demo-logistic/route', {
      variants: [{ name: 'control', version: '1', weight: 0.7 }, { name: 'treatment', version: '2', weight: 0.3 }], assignment: 'hash', salt: 'replicas',
    });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    await until(async () => (await variantOf(b.url, 'u0')).startsWith('control') || (await variantOf(b.url, 'u0')).startsWith('treatment'), 5000);
    const units = Array.from({ length: 50 }, (_, i) => `unit-${i}`);
    const first = new Map<string, string>();
    for (const u of units) first.set(u, await variantOf(a.url, u));
    expect(new Set([...first.values()].map((v) => v.split('@')[0])).size).toBe(2);
    for (const u of units) expect(await variantOf(b.url, u), u).toBe(first.get(u));
    for (let i = 0; i < 1000; i++) expect(await variantOf(i % 2 ? a.url : b.url, 'unit-7')).toBe(first.get('unit-7'));
    // Restart b: the route comes back from the registry.
    b.child.kill('SIGTERM');
    await new Promise<void>((r) => b.child.once('exit', () => r()));
    b = await replica(env);
    for (const u of units) expect(await variantOf(b.url, u), `${u} after restart`).toBe(first.get(u));
    expect((await admin(b, adminKey, 'DELETE', '/v1/admin/models/demo-logistic/route')).status).toBe(200);
    await until(async () => (await variantOf(a.url, 'unit-1')).startsWith('undefined@'), 5000);
  });
});

describeWith(pgServerService, 'the database stops while serving', () => {
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>;
  let s: FullServer;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    s = await startFull({ databaseUrl: pg.url, reconcileMs: 1000 });
  });
  afterAll(async () => {
    await s?.close();
    await pg?.destroy();
  });

  it('keeps predicting, answers admin calls 503 fast, and recovers by itself', async () => {
    const v2 = logisticVersion(2);
    const { body, headers } = registerBody({ manifest: v2.manifest, version: '2' }, v2.payload);
    expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/versions', body, headers)).status).toBe(200);
    await pg.stop();
    for (let i = 0; i < 20; i++) expect(await version(s.url)).toBe('1');
    const t0 = performance.now();
    const down = await admin(s, s.adminKey, 'GET', '/v1/admin/models');
    expect(down).toMatchObject({ status: 503, json: { code: 'REGISTRY_UNAVAILABLE' } });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(JSON.stringify(down.json)).not.toContain(pg.url);
    expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/promote', { version: '2' })).json.code).toBe('REGISTRY_UNAVAILABLE');
    await pg.start();
    await until(async () => (await admin(s, s.adminKey, 'GET', '/v1/admin/models')).status === 200, 30_000, 200);
    expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/demo-logistic/promote', { version: '2' })).status).toBe(200);
    await until(async () => (await version(s.url)) === '2', 10_000);
  });
});

describe('replicas need PostgreSQL', () => {
  it('two processes cannot share one embedded PGlite directory: the second refuses clearly', async () => {
    const dir = await tempDir('sluice-lock-');
    const env = { SLUICE_DATA_DIR: dir.dir, SLUICE_MODELS: 'demo-logistic' };
    const first = await replica(env);
    try {
      await expect(replica(env)).rejects.toThrow(/exited 1/);
    } finally {
      first.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      await dir.cleanup();
    }
  });
});
