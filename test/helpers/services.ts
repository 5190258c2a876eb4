/**
 * Real services for the registry, artifact and auth tests, and the embedded defaults beside
 * them. The real ones come from the environment (.ci/run starts them with scripts/ci/services.sh;
 * by hand: `source scripts/ci/services.sh && services_start`):
 *   SLUICE_TEST_DATABASE_URL   PostgreSQL; each test file gets a database of its own
 *   SLUICE_TEST_S3_ENDPOINT    S3-compatible server (+ _REGION, _ACCESS_KEY_ID, _SECRET_ACCESS_KEY);
 *                              each test file gets a bucket of its own
 *   SLUICE_TEST_PG_BIN         PostgreSQL binaries, for tests that stop and start a server
 * Without them those variants are skipped, saying why; with SLUICE_REQUIRE_SERVICES=1 (CI) a
 * missing service fails the run instead.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { describe, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/index.js';
import { projectRoot } from '../../src/paths.js';
import type { Db } from '../../src/registry/db.js';
import { migrate } from '../../src/registry/migrate.js';
import { PgDb, type PgOptions } from '../../src/registry/pg-db.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';

const run = promisify(execFile);
const env = process.env;
export const requireServices = env.SLUICE_REQUIRE_SERVICES === '1';

export interface Service {
  name: string;
  available: boolean;
  /** Why it is missing (empty when available). */
  reason: string;
}

function service(name: string, vars: string[]): Service {
  const missing = vars.filter((v) => !env[v]);
  return { name, available: missing.length === 0, reason: missing.length ? `${missing.join(', ')} unset: start it with scripts/ci/services.sh` : '' };
}

export const postgresService = service('PostgreSQL', ['SLUICE_TEST_DATABASE_URL']);
export const s3Service = service('S3', ['SLUICE_TEST_S3_ENDPOINT']);
export const pgServerService = service('PostgreSQL binaries', ['SLUICE_TEST_PG_BIN']);

/**
 * `describe` for tests that need a real service: skipped (with the reason in its title) when the
 * service is absent, except under SLUICE_REQUIRE_SERVICES=1, where its absence is a failure.
 */
export function describeWith(svc: Service, title: string, fn: () => void): void {
  if (!svc.available && requireServices) {
    describe(title, () => {
      it(`needs ${svc.name}`, () => {
        throw new Error(`SLUICE_REQUIRE_SERVICES=1 but ${svc.name} is missing: ${svc.reason}`);
      });
    });
    return;
  }
  describe.skipIf(!svc.available)(svc.available ? title : `${title} [skipped: ${svc.reason}]`, fn);
}

export async function tempDir(prefix = 'sluice-test-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A Config for tests: defaults plus `overrides`, never the developer's SLUICE_* variables. */
export function testConfig(overrides: Partial<Config>): Readonly<Config> {
  return loadConfig(overrides, {});
}

// ---- databases -------------------------------------------------------------------------------

/** A fresh database on the test PostgreSQL server; `drop` removes it. */
export async function createPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = env.SLUICE_TEST_DATABASE_URL!;
  const name = `sluice_t_${randomBytes(6).toString('hex')}`;
  if (!/^sluice_t_[0-9a-f]{12}$/.test(name)) throw new Error('bad test database name');
  const exec = async (sql: string): Promise<void> => {
    const c = new pg.Client({ connectionString: admin, connectionTimeoutMillis: 5_000 });
    await c.connect();
    try {
      await c.query(sql); // an identifier made above from hex digits only
    } finally {
      await c.end();
    }
  };
  await exec(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

export interface DbBackend {
  name: 'pglite' | 'postgres';
  service: Service | undefined;
  /** A fresh, migrated database and a Config pointing at it (dataDir is a temp dir). */
  open(pgOptions?: Partial<PgOptions>): Promise<TestDb>;
}

export interface TestDb {
  db: Db;
  config: Readonly<Config>;
  /** Another connection (pool) to the same database: PostgreSQL only. */
  connect?: (pgOptions?: Partial<PgOptions>) => Promise<Db>;
  cleanup: () => Promise<void>;
}

const pgliteBackend: DbBackend = {
  name: 'pglite',
  service: undefined,
  async open() {
    const tmp = await tempDir('sluice-pglite-');
    // The embedded database as the server runs it: in its own thread (pglite-thread.ts).
    const db = await PgliteThreadDb.open(path.join(tmp.dir, 'registry'));
    await migrate(db);
    return {
      db,
      config: testConfig({ dataDir: tmp.dir, databaseUrl: undefined }),
      cleanup: async () => {
        await db.close();
        await tmp.cleanup();
      },
    };
  },
};

/** A database with no migrations applied, on the backend's kind of server (migration tests). */
export async function openBareDb(backend: DbBackend): Promise<{ db: Db; cleanup: () => Promise<void> }> {
  if (backend.name === 'pglite') {
    const tmp = await tempDir('sluice-pglite-bare-');
    const db = await PgliteThreadDb.open(path.join(tmp.dir, 'registry'));
    return { db, cleanup: async () => { await db.close(); await tmp.cleanup(); } };
  }
  const database = await createPgDatabase();
  const db = new PgDb(database.url);
  return { db, cleanup: async () => { await db.close(); await database.drop(); } };
}

export const postgresBackend: DbBackend = {
  name: 'postgres',
  service: postgresService,
  async open(pgOptions = {}) {
    const tmp = await tempDir('sluice-pg-');
    const database = await createPgDatabase();
    const db = new PgDb(database.url, pgOptions);
    await migrate(db);
    const extra: Db[] = [];
    return {
      db,
      config: testConfig({ dataDir: tmp.dir, databaseUrl: database.url }),
      connect: async (o = {}) => {
        const d = new PgDb(database.url, { ...pgOptions, ...o });
        extra.push(d);
        return d;
      },
      cleanup: async () => {
        for (const d of extra) await d.close();
        await db.close();
        await database.drop();
        await tmp.cleanup();
      },
    };
  },
};

const dbBackends = [pgliteBackend, postgresBackend];

/** `describe` once per database backend (the PostgreSQL one follows describeWith's rules). */
export function describeEachDb(title: string, fn: (backend: DbBackend) => void): void {
  for (const b of dbBackends) {
    const t = `${title} (${b.name})`;
    if (b.service) describeWith(b.service, t, () => fn(b));
    else describe(t, () => fn(b));
  }
}

/** A PostgreSQL server of the test's own (initdb'd in a temp dir) that it may stop and start. */
export async function startPrivatePostgres(): Promise<{ url: string; stop: () => Promise<void>; start: () => Promise<void>; destroy: () => Promise<void> }> {
  const base = await mkdtemp(path.join(tmpdir(), 'sluice-pgpriv-'));
  await chmod(base, 0o755); // the postgres OS user must reach its data dir inside
  const dir = path.join(base, 'pg');
  const script = path.join(projectRoot, 'scripts', 'ci', 'postgres.sh');
  const opts = { env: { ...process.env, SLUICE_PG_BIN: env.SLUICE_TEST_PG_BIN }, timeout: 120_000 };
  const start = async (): Promise<string> => (await run('bash', [script, 'start', dir], opts)).stdout.trim();
  const url = await start();
  const stop = async (): Promise<void> => {
    await run('bash', [script, 'stop', dir], opts);
  };
  return {
    url,
    stop,
    start: async () => {
      await start();
    },
    destroy: async () => {
      await stop().catch(() => undefined);
      await rm(base, { recursive: true, force: true });
    },
  };
}

// ---- S3 --------------------------------------------------------------------------------------

export interface TestBucket {
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A raw client, for tampering with objects behind the store's back. */
  client: S3Client;
  cleanup: () => Promise<void>;
}

function s3Settings(): Omit<TestBucket, 'bucket' | 'client' | 'cleanup'> {
  return {
    endpoint: env.SLUICE_TEST_S3_ENDPOINT!,
    region: env.SLUICE_TEST_S3_REGION ?? 'us-east-1',
    accessKeyId: env.SLUICE_TEST_S3_ACCESS_KEY_ID ?? 'test',
    secretAccessKey: env.SLUICE_TEST_S3_SECRET_ACCESS_KEY ?? 'test',
  };
}

/** A new bucket on the test S3 server; cleanup empties and deletes it. */
export async function createTestBucket(): Promise<TestBucket> {
  const s = s3Settings();
  const client = new S3Client({
    endpoint: s.endpoint, region: s.region, forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  const bucket = `${env.SLUICE_TEST_S3_BUCKET ?? 'sluice-test'}-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    ...s, bucket, client,
    cleanup: async () => {
      for (;;) {
        const list = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
        const keys = (list.Contents ?? []).map((o) => ({ Key: o.Key! }));
        if (keys.length === 0) break;
        await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      client.destroy();
    },
  };
}

/**
 * A TCP proxy to `target` that can be cut: `down()` refuses new connections and drops open ones
 * (a server that went away, as its clients see it), `silence()` stops passing bytes either way
 * on open and new connections without closing anything (a network partition: only timeouts can
 * end a wait), `up()` lets traffic through again (a silenced connection resumes where it
 * stopped, as TCP would after a partition heals). Used to stop "S3" or PostgreSQL for one
 * client without disturbing the other tests sharing the server.
 */
export async function tcpGate(target: string): Promise<{ url: string; port: number; down: () => void; silence: () => void; up: () => void; close: () => Promise<void> }> {
  const t = new URL(target);
  let state: 'open' | 'down' | 'silent' = 'open';
  const pairs = new Set<[net.Socket, net.Socket]>();
  const flow = ([client, upstream]: [net.Socket, net.Socket]): void => {
    client.pipe(upstream).pipe(client);
  };
  const dropAll = (): void => {
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  const server = net.createServer((client) => {
    if (state === 'down') {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(t.port), t.hostname);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    // Silent: held, not read (an unpiped socket does not flow), until up().
    if (state === 'open') flow(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    down: () => {
      state = 'down';
      dropAll();
    },
    silence: () => {
      if (state !== 'open') return;
      state = 'silent';
      // Unpiping the last destination pauses a stream; what it had read stays buffered.
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
      }
    },
    up: () => {
      if (state === 'silent') for (const pair of pairs) flow(pair);
      state = 'open';
    },
    close: () => new Promise<void>((resolve) => {
      state = 'down';
      dropAll();
      server.close(() => resolve());
    }),
  };
}

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string, stepMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
