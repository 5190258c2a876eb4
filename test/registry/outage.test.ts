/**
 * The database goes away and comes back. A PostgreSQL server of this test's own is stopped with
 * `pg_ctl stop` and started again: registry calls fail fast with REGISTRY_UNAVAILABLE meanwhile,
 * what was known keeps working (watcher state, API keys), and everything recovers without
 * restarting anything, including the watcher's LISTEN connection.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { KeyInfo } from '../../src/auth/keys.js';
import { SluiceError } from '../../src/errors.js';
import { PgDb } from '../../src/registry/pg-db.js';
import { openRegistry, type RegistryServices } from '../../src/registry/open.js';
import { describeWith, eventually, pgServerService, startPrivatePostgres, tempDir, testConfig } from '../helpers/services.js';
import { registerModel } from './models.js';

async function failsFast(p: Promise<unknown>, withinMs: number): Promise<void> {
  const t0 = performance.now();
  const err = await p.then(() => undefined, (e: unknown) => e);
  const ms = performance.now() - t0;
  expect(err, 'should have failed').toBeInstanceOf(SluiceError);
  expect((err as SluiceError).code).toBe('REGISTRY_UNAVAILABLE');
  expect((err as SluiceError).retryable).toBe(true);
  // The connection string (with its password) stays out of the message.
  expect((err as SluiceError).message).not.toMatch(/postgres:|sluice-ci|127\.0\.0\.1/);
  expect(ms).toBeLessThan(withinMs);
}

describeWith(pgServerService, 'registry while PostgreSQL is stopped and started again', () => {
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>;
  let services: RegistryServices;
  let tmp: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    tmp = await tempDir();
  });
  afterAll(async () => {
    await services?.close();
    await pg?.destroy();
    await tmp?.cleanup();
  });

  it('fails fast with REGISTRY_UNAVAILABLE, keeps the last known state, and recovers by itself', async () => {
    services = await openRegistry(testConfig({ dataDir: tmp.dir, databaseUrl: pg.url, reconcileMs: 60_000 }), { keys: { missRefreshMs: 500 } });
    const { registry, watcher, keys } = services;
    const admin = services.initialAdminKey!;
    expect(admin.secret).toMatch(/^sk_/);
    const seen: string[] = [];
    watcher.onChange((model, version) => {
      seen.push(`${model}@${version}`);
    });
    await watcher.start();
    for (const v of ['1', '2', '3']) await registerModel(registry, 'outage', { version: v });
    await registry.promote('outage', '1', 'production', { actor: 'ops' });
    await eventually(() => seen.includes('outage@1') || undefined, 2000, 'the first promotion');

    await pg.stop();
    await failsFast(registry.listModels(), 3_500);
    await failsFast(registry.promote('outage', '2', 'production', { actor: 'ops' }), 3_500);
    await failsFast(registerModel(registry, 'outage', { version: '4' }), 3_500);
    // Serving goes on from what was known.
    expect(watcher.state.get('outage')).toBe('1');
    expect(await keys.verify(admin.secret)).toEqual<KeyInfo>({ name: admin.name, scopes: ['admin'] });
    // Unknown keys: at most one refresh attempt per missRefreshMs, failed ones included, so
    // requests with bad keys do not each wait on the database.
    await new Promise((r) => setTimeout(r, 600)); // the next miss may refresh
    const queries = vi.spyOn(services.db, 'query');
    for (let i = 0; i < 5; i++) expect(await keys.verify(`sk_unknown_${i}`)).toBeUndefined();
    expect(queries).toHaveBeenCalledTimes(1);
    queries.mockRestore();
    await watcher.reconcile(); // fails quietly
    expect(watcher.state.get('outage')).toBe('1');

    await pg.start();
    // No restart, no reconnect call: the pool and the LISTEN connection come back by themselves.
    await eventually(() => registry.listModels(), 15_000, 'the registry to answer again', 200);
    await eventually(() => ((services.db as PgDb).listening ? true : undefined), 15_000, 'LISTEN to reconnect', 100);
    await registry.promote('outage', '2', 'production', { actor: 'ops' });
    // Reported through LISTEN (the periodic reconcile is a minute away).
    await eventually(() => seen.includes('outage@2') || undefined, 2_000, 'the watcher to report the promotion after recovery');
    expect(watcher.state.get('outage')).toBe('2');
    expect((await registry.showModel('outage')).productionVersion).toBe('2');
  });
});

describe('an unresponsive database server', () => {
  let silent: net.Server;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    // Accepts connections and never answers: only timeouts can end the wait.
    silent = net.createServer((s) => {
      held.push(s);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('fails within the connect timeout, and so does LISTEN without hanging', async () => {
    const port = (silent.address() as net.AddressInfo).port;
    const db = new PgDb(`postgres://u:secret-password@127.0.0.1:${port}/x`, { connectTimeoutMs: 500, queryTimeoutMs: 500 });
    try {
      await failsFast(db.query('SELECT 1'), 1_500);
      await failsFast(db.transaction((tx) => tx.query('SELECT 1')), 1_500);
      const t0 = performance.now();
      const stop = await db.listen('sluice_registry', { onNotify: () => undefined });
      expect(performance.now() - t0).toBeLessThan(1_500);
      expect(db.listening).toBe(false);
      await stop();
    } finally {
      await db.close();
    }
  });

  it('fails at once when nothing listens on the port', async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const db = new PgDb(`postgres://u:p@127.0.0.1:${port}/x`);
    try {
      await failsFast(db.query('SELECT 1'), 1_000);
    } finally {
      await db.close();
    }
  });
});
