/**
 * The embedded database's thread yields to serving only once start-up is over (its nice value,
 * SLUICE_EMBEDDED_DB_NICE, is weighed against every thread on the machine, and start-up is
 * mostly that thread's work: src/registry/pglite-thread.ts yieldToServing). Once `serve()`
 * has resolved, exactly one thread of this process runs at the configured nice value.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFull, type FullServer } from '../helpers/server.js';
import { threadNices } from '../helpers/thread-nices.js';


describe.skipIf(process.platform !== 'linux')('embedded database priority (Linux only: per-thread nice from /proc)', () => {
  let s: FullServer;
  beforeAll(async () => {
    s = await startFull({ embeddedDbNice: 13 });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  it('runs the database thread at the configured nice value once serving, and no other thread', () => {
    expect(threadNices().filter((n) => n === 13)).toHaveLength(1);
  });
});
