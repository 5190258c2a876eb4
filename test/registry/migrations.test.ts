import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../src/registry/migrate.js';
import { PgliteDb } from '../../src/registry/pglite-db.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';

it('reads the migration files from the source tree, wherever the code runs from', async () => {
  expect(MIGRATIONS_DIR).toBe(path.join(projectRoot, 'src', 'registry', 'migrations'));
  const all = await loadMigrations();
  expect(all.map((m) => m.id)).toEqual([...all.map((m) => m.id)].sort((a, b) => a - b));
  expect(all.map((m) => `${String(m.id).padStart(3, '0')}_${m.name}`)).toEqual(expect.arrayContaining(['001_registry', '002_api_keys']));
});

it('refuses badly named or duplicate migration files', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-mig-'));
  try {
    await writeFile(path.join(dir, '001_a.sql'), 'SELECT 1;');
    await writeFile(path.join(dir, '001_b.sql'), 'SELECT 1;');
    await expect(loadMigrations(dir)).rejects.toThrow(/two migrations numbered 001/);
    await rm(path.join(dir, '001_b.sql'));
    await writeFile(path.join(dir, '2-bad.sql'), 'SELECT 1;');
    await expect(loadMigrations(dir)).rejects.toThrow(/NNN_name/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

describeEachDb('migrations', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await backend.open(); // applies them
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('are recorded once each, and applying again changes nothing', async () => {
    const files = await loadMigrations();
    const rows = await t.db.query<{ id: number; sha256: string }>('SELECT id, sha256 FROM schema_migrations ORDER BY id');
    expect(rows.map((r) => [r.id, r.sha256])).toEqual(files.map((m) => [m.id, m.sha256]));
    expect(await migrate(t.db)).toEqual([]);
  });

  it('apply a new migration in order, and roll a failing one back whole', async () => {
    const base = await loadMigrations();
    const extra = [...base, { id: 900, name: 'extra', sql: 'CREATE TABLE test_extra (x int); INSERT INTO test_extra VALUES (1);', sha256: 'a'.repeat(64) }];
    expect(await migrate(t.db, extra)).toEqual([900]);
    expect(await t.db.query('SELECT x FROM test_extra')).toEqual([{ x: 1 }]);
    const broken = [...base, { id: 901, name: 'broken', sql: 'CREATE TABLE test_broken (x int); SELECT * FROM no_such_table;', sha256: 'b'.repeat(64) }];
    await expect(migrate(t.db, broken)).rejects.toMatchObject({ code: '42P01' });
    // Nothing of it remains: neither its table nor its record.
    expect(await t.db.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'test_broken'")).toEqual([]);
    expect(await t.db.query('SELECT 1 FROM schema_migrations WHERE id = 901')).toEqual([]);
  });

  // One PGlite instance is one connection: nothing runs at once there.
  it.skipIf(backend.name === 'pglite')('can run from several replicas at once (they take turns; PostgreSQL only: one PGlite instance is one connection)', async () => {
    const others = await Promise.all([t.connect!(), t.connect!(), t.connect!()]);
    const extra = [...(await loadMigrations()), { id: 902, name: 'race', sql: 'CREATE TABLE test_race (x int);', sha256: 'c'.repeat(64) }];
    const applied = await Promise.all(others.map((db) => migrate(db, extra)));
    expect(applied.flat()).toEqual([902]);
  });
});

describe('the embedded database directory', () => {
  it('is one process\'s at a time (a lock file), and a stale lock is taken over', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-lock-'));
    try {
      const db = await PgliteDb.open(path.join(dir, 'registry'));
      await expect(PgliteDb.open(path.join(dir, 'registry'))).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE', message: expect.stringContaining(String(process.pid)) });
      await db.close();
      // A crashed owner leaves its lock behind: a pid that is no longer running.
      const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
      await writeFile(path.join(dir, 'registry.lock'), String(dead));
      const again = await PgliteDb.open(path.join(dir, 'registry'));
      await again.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
