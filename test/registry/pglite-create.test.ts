/**
 * A new embedded database is created in a worker thread (src/registry/pglite-init-worker.ts):
 * PGlite's initdb step otherwise leaves ~400 MB of WebAssembly memory resident in the serving
 * process for its whole life (measured: 797 MB RSS after creating in-process, ~300 MB after a
 * reopen). The bound below sits between the two.
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

  it('runs initdb off the main thread: the process keeps only the open database', async () => {
    const dir = path.join(tmp.dir, 'db');
    const before = process.memoryUsage().rss;
    const db = await PgliteDb.open(dir);
    try {
      expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
      expect(await db.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
      const grownMb = (process.memoryUsage().rss - before) / 1048576;
      expect(grownMb).toBeLessThan(500);
    } finally {
      await db.close();
    }
    // And it opens again as an existing database (no second initdb).
    const again = await PgliteDb.open(dir);
    await again.close();
  });
});
