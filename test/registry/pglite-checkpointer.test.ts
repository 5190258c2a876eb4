/**
 * The embedded database's checkpoints (src/registry/pglite-checkpointer.ts): single-user PGlite
 * takes none by itself, so its WAL directory grows with every segment written; with the
 * checkpointer it stays bounded (old segments recycled or removed), nothing written is lost, and
 * an idle database is left alone. Real PGlite in temporary directories.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Queryable } from '../../src/registry/db.js';
import { PgliteDb } from '../../src/registry/pglite-db.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';
// Polls up to 10 s: the checks run on a timer, which a loaded machine delays.
import { until } from '../helpers/server.js';

const MB = 1024 * 1024;
const NEVER = { walBytes: Number.POSITIVE_INFINITY, timeoutMs: Number.POSITIVE_INFINITY, checkMs: 50 };

async function walMb(dir: string): Promise<number> {
  const wal = path.join(dir, 'pg_wal');
  let bytes = 0;
  for (const name of await readdir(wal)) {
    const s = await stat(path.join(wal, name));
    if (s.isFile()) bytes += s.size;
  }
  return bytes / MB;
}

/**
 * Writes ~`mb` MB of WAL: 1 MB rows made by the database itself (a parameter that size is slow
 * to send to PGlite), stored uncompressed (STORAGE EXTERNAL), yielding to timers between rows.
 */
async function writeWal(db: Queryable, mb: number): Promise<void> {
  await db.exec('CREATE TABLE IF NOT EXISTS blobs (id serial PRIMARY KEY, b bytea NOT NULL); ALTER TABLE blobs ALTER COLUMN b SET STORAGE EXTERNAL');
  for (let i = 0; i < mb; i++) {
    await db.query("INSERT INTO blobs (b) SELECT decode(repeat(to_hex($1::int % 200 + 16), $2::int), 'hex')", [i, MB]);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('embedded database checkpoints', () => {
  const dirs: string[] = [];
  const dbs: PgliteDb[] = [];
  const open = async (opts: Parameters<typeof PgliteDb.open>[1]) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-ckpt-'));
    dirs.push(dir);
    const db = await PgliteDb.open(path.join(dir, 'registry'), opts);
    dbs.push(db);
    return { db, dir: path.join(dir, 'registry') };
  };
  afterAll(async () => {
    for (const db of dbs) await db.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('keeps pg_wal bounded where PGlite alone keeps every segment, and loses nothing', { timeout: 120_000 }, async () => {
    const without = await open(NEVER);
    const withCk = await open({ walBytes: 16 * MB, timeoutMs: Number.POSITIVE_INFINITY, checkMs: 50 });
    await writeWal(without.db, 96);
    await writeWal(withCk.db, 96);
    const grown = await walMb(without.dir);
    const bounded = await walMb(withCk.dir);
    console.log(`pg_wal after 96 MB of WAL: ${grown.toFixed(0)} MB without checkpoints, ${bounded.toFixed(0)} MB with them (${withCk.db.checkpointer.count} taken)`);
    // Without checkpoints every segment since start is still there.
    expect(without.db.checkpointer.count).toBe(0);
    expect(grown, `pg_wal without checkpoints: ${grown} MB`).toBeGreaterThanOrEqual(96);
    // With them: min_wal_size (32 MB) kept for reuse, about one checkpoint's distance, the segment in use.
    expect(withCk.db.checkpointer.count, 'checkpoints taken').toBeGreaterThanOrEqual(3);
    // What /metrics says of them: their count, time taken, and the WAL since the last one.
    const stats = withCk.db.checkpointer.stats();
    expect(stats.count).toBe(withCk.db.checkpointer.count);
    expect(stats.seconds, 'time spent in checkpoints').toBeGreaterThan(0);
    expect(stats.failures).toBe(0);
    expect(stats.walSinceCheckpoint, 'WAL since the last checkpoint').toBeLessThan(16 * MB + MB + 1);
    expect(withCk.db.metricLines()).toContain(`sluice_embedded_db_checkpoints_total ${stats.count}`);
    expect(without.db.checkpointer.stats().walSinceCheckpoint, 'WAL since start, never checkpointed').toBeGreaterThanOrEqual(96 * MB);
    expect(without.db.metricLines()).toContain('sluice_embedded_db_checkpoints_total 0');
    expect(bounded, `pg_wal with checkpoints: ${bounded} MB (without: ${grown} MB)`).toBeLessThanOrEqual(80);
    // Everything written is there, and again after a restart.
    const [n] = await withCk.db.query<{ n: number; bytes: string }>('SELECT count(*)::int AS n, sum(octet_length(b))::text AS bytes FROM blobs');
    expect(n).toEqual({ n: 96, bytes: String(96 * MB) });
    await withCk.db.close();
    const again = await PgliteDb.open(withCk.dir, NEVER);
    dbs.push(again);
    const [m] = await again.query<{ n: number }>('SELECT count(*)::int AS n FROM blobs');
    expect(m!.n).toBe(96);
  });

  it('checkpoints after the timeout only when WAL was written since its last one', { timeout: 60_000 }, async () => {
    const { db } = await open({ walBytes: Number.POSITIVE_INFINITY, timeoutMs: 200, checkMs: 50 });
    await db.query('CREATE TABLE t (x int)');
    await until(() => db.checkpointer.count >= 1);
    const afterWrite = db.checkpointer.count;
    expect(afterWrite, 'a checkpoint after the write').toBeGreaterThanOrEqual(1);
    const [before] = await db.query<{ lsn: string }>('SELECT checkpoint_lsn::text AS lsn FROM pg_control_checkpoint()');
    // Idle for several timeouts: its own checkpoint record does not start another.
    await new Promise((r) => setTimeout(r, 800));
    expect(db.checkpointer.count).toBe(afterWrite);
    await db.query('INSERT INTO t VALUES (1)');
    await until(() => db.checkpointer.count > afterWrite);
    // One for that write, and none again while nothing more is written.
    await new Promise((r) => setTimeout(r, 400));
    expect(db.checkpointer.count).toBe(afterWrite + 1);
    const [after] = await db.query<{ lsn: string }>('SELECT checkpoint_lsn::text AS lsn FROM pg_control_checkpoint()');
    expect(after!.lsn).not.toBe(before!.lsn);
  });

  it('reports the checkpoints of the database\'s own thread to the process, for /metrics', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sluice-ckpt-'));
    dirs.push(dir);
    const db = await PgliteThreadDb.open(path.join(dir, 'registry'), { checkpoints: { walBytes: 4 * MB, timeoutMs: Number.POSITIVE_INFINITY, checkMs: 50 } });
    try {
      const line = (name: string) => Number(db.metricLines().find((l) => l.startsWith(name + ' '))?.split(' ')[1]);
      expect(line('sluice_embedded_db_checkpoints_total')).toBe(0);
      await writeWal(db, 12);
      await until(() => line('sluice_embedded_db_checkpoints_total') >= 2);
      expect(line('sluice_embedded_db_checkpoints_total'), 'checkpoints taken in the thread').toBeGreaterThanOrEqual(2);
      expect(line('sluice_embedded_db_checkpoint_seconds_total')).toBeGreaterThan(0);
      expect(line('sluice_embedded_db_checkpoint_failures_total')).toBe(0);
      expect(line('sluice_embedded_db_wal_since_checkpoint_bytes')).toBeGreaterThan(0);
    } finally {
      await db.close();
    }
  });
});
