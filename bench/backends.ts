/**
 * The databases benchmarks run on: PGlite as the server runs it (in its own thread), and a
 * PostgreSQL database of the benchmark's own on the server `url` names (dropped after).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Db } from '../src/registry/db.js';
import { migrate } from '../src/registry/migrate.js';

export interface Backend {
  name: string;
  db: Db;
  dataDir: string;
  close(): Promise<void>;
}

export async function pglite(): Promise<Backend> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-db-'));
  // As the server runs it: in its own thread (at the default nice value).
  const { PgliteThreadDb } = await import('../src/registry/pglite-thread.js');
  const db = await PgliteThreadDb.open(path.join(dir, 'registry'), { nice: 10 });
  await migrate(db);
  return { name: 'PGlite', db, dataDir: dir, close: async () => { await db.close(); await rm(dir, { recursive: true, force: true }); } };
}

export async function postgres(url: string): Promise<Backend> {
  const pg = (await import('pg')).default;
  const { PgDb } = await import('../src/registry/pg-db.js');
  const name = `sluice_bench_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    await c.connect();
    try {
      await c.query(sql); // a name made above of hex digits only
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(url);
  u.pathname = `/${name}`;
  const db = new PgDb(u.toString());
  await migrate(db);
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-db-'));
  return {
    name: 'PostgreSQL', db, dataDir: dir,
    close: async () => {
      await db.close();
      await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

