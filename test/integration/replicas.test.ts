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

  beforeAll(async () => {
    const db = await createPgDatabase();
    const dir = await tempDir('sluice-replicas-');
    cleanup = async () => {
      await db.drop();
      await dir.cleanup();
    };
    // Shared database; a shared artifact directory stands in for S3 between the two.
    const env = { SLUICE_DATABASE_URL: db.url, SLUICE_DATA_DIR: dir.dir, SLUICE_ADMIN_KEY: adminKey, SLUICE_REGISTRY_RECONCILE_MS: '60000' };
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
