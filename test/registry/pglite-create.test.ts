/**
 * A new embedded database is created in a child process (src/registry/pglite-init-process.ts),
 * and the database is opened with the settings of src/registry/pglite-settings.ts. PGlite's
 * initdb step otherwise leaves ~400 MB resident in the serving process for its whole life
 * (measured: 797 MB RSS after creating in-process); initdb in a worker thread with PostgreSQL's
 * default settings still grew it by ~340 MB. With both, opening grows it by ~50 MB.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
      expect(await again.query('SELECT current_setting($1) AS v', ['shared_buffers'])).toEqual([{ v: '8MB' }]);
      expect(await again.query('SELECT current_setting($1) AS v', ['max_connections'])).toEqual([{ v: '10' }]);
    } finally {
      await again.close();
    }
  });
});
