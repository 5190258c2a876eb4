/**
 * The embedded database's commits reach the disk (src/registry/pglite-settings.ts, "Durability"):
 * PGlite started PostgreSQL with fsync off and its file system's fsync did nothing, so an
 * acknowledged commit could be lost to an operating-system crash. Here, against a real PGlite
 * in a directory: PostgreSQL runs with fsync on and syncs its WAL with fsync(), and every
 * commit calls the real fsync on a WAL file under the data directory, before it returns.
 * (Without syncToDisk the count of fsyncs is 0; with PGlite's default start parameters
 * `fsync` shows off.) Through the database's thread, the way the server runs it, the settings
 * are checked too.
 */
import fs, { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { PgliteDb } from '../../src/registry/pglite-db.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'sluice-durable-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('PGlite in a directory, in-process', () => {
  let db: PgliteDb;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir();
    db = await PgliteDb.open(dir);
    await db.query('CREATE TABLE d (k int)');
  }, 60_000);
  afterAll(async () => {
    await db?.close();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('runs PostgreSQL with fsync on, syncing its WAL with fsync()', async () => {
    expect(await db.query('SHOW fsync')).toEqual([{ fsync: 'on' }]);
    expect(await db.query('SHOW wal_sync_method')).toEqual([{ wal_sync_method: 'fsync' }]);
    expect(await db.query('SHOW synchronous_commit')).toEqual([{ synchronous_commit: 'on' }]);
  });

  it('fsyncs a WAL file under the data directory in every commit, before the commit returns', async () => {
    const synced: string[] = [];
    const real = fs.fsyncSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd: number) => {
      synced.push(readlinkSync(`/proc/self/fd/${fd}`));
      real(fd);
    });
    for (let i = 0; i < 5; i++) {
      const before = synced.length;
      await db.query('INSERT INTO d VALUES ($1)', [i]);
      expect(synced.length, `commit ${i}`).toBeGreaterThan(before);
    }
    const wal = path.join(dir, 'pg_wal') + path.sep;
    expect(synced.filter((f) => f.startsWith(wal)).length).toBeGreaterThanOrEqual(5);
    // Through Db.write (the decision log's path) and a transaction as well.
    let before = synced.length;
    await db.write('INSERT INTO d VALUES ($1)', [99]);
    expect(synced.length).toBeGreaterThan(before);
    before = synced.length;
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO d VALUES (1)');
      await tx.query('INSERT INTO d VALUES (2)');
    });
    expect(synced.length).toBeGreaterThan(before);
  });

  it('a read-only statement writes no WAL and syncs nothing', async () => {
    const spy = vi.spyOn(fs, 'fsyncSync');
    await db.query('SELECT count(*) FROM d');
    expect(spy).not.toHaveBeenCalled();
  });
});

describe('PGlite in a directory, through its thread', () => {
  it('has the same settings, and its commits land', async () => {
    const dir = tempDir();
    const db = await PgliteThreadDb.open(dir);
    try {
      expect(await db.query('SHOW fsync')).toEqual([{ fsync: 'on' }]);
      expect(await db.query('SHOW wal_sync_method')).toEqual([{ wal_sync_method: 'fsync' }]);
      await db.query('CREATE TABLE d (k int)');
      await db.query('INSERT INTO d VALUES (7)');
    } finally {
      await db.close();
    }
    const again = await PgliteDb.open(dir);
    try {
      expect(await again.query('SELECT k FROM d')).toEqual([{ k: 7 }]);
    } finally {
      await again.close();
    }
  }, 60_000);
});

describe('PGlite in memory', () => {
  it('opens without a directory (nothing to sync)', async () => {
    const db = await PgliteDb.open(undefined);
    try {
      expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await db.close();
    }
  });
});
