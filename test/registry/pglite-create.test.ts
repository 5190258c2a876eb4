/**
 * A new embedded database is created in a child process (src/registry/pglite-init-process.ts),
 * and the database is opened with the settings of src/registry/pglite-settings.ts. PGlite's
 * initdb step otherwise leaves ~400 MB resident in the serving process for its whole life
 * (measured: 797 MB RSS after creating in-process); initdb in a worker thread with PostgreSQL's
 * default settings still grew it by ~340 MB. With both, opening grows it by ~50 MB.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { PgliteDb } from '../../src/registry/pglite-db.js';
import { tempDir } from '../helpers/services.js';

describe('creating an embedded database', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    tmp = await tempDir('sluice-pglite-create-');
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  it('runs initdb in a child process: this process keeps only the open database, at its small settings', async () => {
    const dir = path.join(tmp.dir, 'db');
    const before = process.memoryUsage().rss;
    const db = await PgliteDb.open(dir);
    try {
      expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
      expect(await db.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      const grownMb = (process.memoryUsage().rss - before) / 1048576;
      console.log(`opening a new embedded database grew this process by ${grownMb.toFixed(1)} MB`);
      expect(grownMb).toBeLessThan(150);
    } finally {
      await db.close();
    }
    // And it opens again as an existing database (no second initdb), with the same settings,
    // which are start parameters, not the data directory's postgresql.conf.
    const again = await PgliteDb.open(dir);
    try {
      expect(await again.query('SELECT current_setting($1) AS v', ['shared_buffers'])).toEqual([{ v: '4MB' }]);
      expect(await again.query('SELECT current_setting($1) AS v', ['max_connections'])).toEqual([{ v: '10' }]);
    } finally {
      await again.close();
    }
  });

  /** Pids of the initdb child processes working on `dir`'s staging directories. */
  function initdbPids(dir: string): number[] {
    const pids: number[] = [];
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p)) continue;
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        if (cmd.includes('pglite-init-process.js') && cmd.includes(`${dir}.initdb-`)) pids.push(Number(p));
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  }

  const waitFor = async (what: string, ok: () => boolean, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it.skipIf(process.platform !== 'linux')('a first start killed during initdb: its orphaned initdb never writes into the directory, which a later start may have open (Linux only: reads /proc)', { timeout: 240_000 }, async () => {
    const dir = path.join(tmp.dir, 'killed');
    // A server's first start, as its own process, killed (SIGKILL: no clean-up) while its initdb
    // child runs; that child lives on, orphaned.
    const first = spawn(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(path.join(projectRoot, 'dist/src/registry/pglite-db.js'))}).then((m) => m.PgliteDb.open(${JSON.stringify(dir)}))`], { stdio: 'ignore' });
    const orphans: number[] = [];
    try {
      await waitFor('the initdb child', () => initdbPids(dir).length > 0, 60_000);
      orphans.push(...initdbPids(dir));
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      // The directory's lock died with its owner: anything the orphan wrote into the directory
      // now could land under a later start's open database. It must write only beside it.
      await waitFor('the orphaned initdb to end', () => orphans.every((pid) => !existsSync(`/proc/${pid}`)), 120_000);
      expect(readdirSync(dir)).toEqual([]);
      // The next start takes the directory over and makes its own database.
      const db = await PgliteDb.open(dir);
      try {
        await db.exec('CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');
      } finally {
        await db.close();
      }
      const again = await PgliteDb.open(dir);
      try {
        expect(await again.query('SELECT v FROM kept')).toEqual([{ v: 42 }]);
      } finally {
        await again.close();
      }
      // Its leftover staging directory is removed by a later open.
      expect(readdirSync(tmp.dir).filter((n) => n.startsWith('killed.initdb-'))).toEqual([]);
    } finally {
      first.kill('SIGKILL');
      for (const pid of orphans) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  });
});
