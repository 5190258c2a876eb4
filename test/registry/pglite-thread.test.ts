/**
 * The embedded database in its own thread (src/registry/pglite-thread.ts): the same behaviour
 * as PGlite in-process (the registry, key and learn tests run on it through
 * test/helpers/services.ts), plus what the thread is for: a long statement does not hold up
 * this thread's event loop, and the thread runs at the nice value it was given once start-up is over.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { sqlState } from '../../src/registry/db.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';
import { threadNices } from '../helpers/thread-nices.js';


describe('PgliteThreadDb', () => {
  let db: PgliteThreadDb;
  beforeAll(async () => {
    db = await PgliteThreadDb.open(undefined, { nice: 7 });
    await db.exec('CREATE TABLE t (k text PRIMARY KEY, v int NOT NULL)');
  });
  afterAll(async () => {
    await db.close();
  });

  it('runs parameterised queries and keeps value types', async () => {
    const [r] = await db.query<{ n: number; s: string; b: boolean; bytes: Uint8Array; arr: number[] }>(
      'SELECT $1::int + 1 AS n, $2::text AS s, true AS b, $3::bytea AS bytes, $4::real[] AS arr',
      [41, 'x\u00e9', new Uint8Array([1, 2, 3]), '{1.5,2}'],
    );
    expect(r).toEqual({ n: 42, s: 'x\u00e9', b: true, bytes: new Uint8Array([1, 2, 3]), arr: [1.5, 2] });
  });

  it('keeps the codes callers classify errors by (SQLSTATE and severity)', async () => {
    await db.query('INSERT INTO t VALUES ($1, 1)', ['dup']);
    const e = await db.query('INSERT INTO t VALUES ($1, 2)', ['dup']).catch((x: unknown) => x);
    expect(sqlState(e)).toBe('23505');
    expect(e).toBeInstanceOf(Error);
  });

  it('commits a transaction that resolves and rolls back one that throws, passing its error unchanged', async () => {
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES ($1, 1)', ['committed']);
    });
    const mine = new SluiceError('INVALID_ARGUMENT', 'mine');
    const got = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES ($1, 1)', ['rolled-back']);
      throw mine;
    }).catch((x: unknown) => x);
    expect(got).toBe(mine);
    const keys = (await db.query<{ k: string }>('SELECT k FROM t ORDER BY k')).map((r) => r.k);
    expect(keys).toContain('committed');
    expect(keys).not.toContain('rolled-back');
  });

  it('runs transactions one at a time: concurrent read-modify-writes lose no update', async () => {
    await db.query('INSERT INTO t VALUES ($1, 0)', ['counter']);
    await Promise.all(Array.from({ length: 20 }, () => db.transaction(async (tx) => {
      const [r] = await tx.query<{ v: number }>('SELECT v FROM t WHERE k = $1', ['counter']);
      await new Promise((res) => setTimeout(res, 1));
      await tx.query('UPDATE t SET v = $1 WHERE k = $2', [r!.v + 1, 'counter']);
    })));
    const [r] = await db.query<{ v: number }>('SELECT v FROM t WHERE k = $1', ['counter']);
    expect(r!.v).toBe(20);
  });

  it('delivers notifications to listeners, and stops when told', async () => {
    const got: string[] = [];
    let listening = 0;
    const stop = await db.listen('sluice_test', { onNotify: (p) => got.push(p), onListening: () => listening++ });
    expect(listening).toBe(1);
    await db.query("SELECT pg_notify('sluice_test', $1)", ['one']);
    await waitFor(() => got.length === 1);
    await stop();
    await db.query("SELECT pg_notify('sluice_test', $1)", ['two']);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(['one']);
  });

  it('does not hold up this thread while a long statement runs', async () => {
    let ticks = 0;
    let worstGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const t0 = performance.now();
    await db.query('SELECT count(*) FROM generate_series(1, 3000000) g WHERE g % 7 = 0');
    const took = performance.now() - t0;
    clearInterval(timer);
    // The statement takes far longer than a tick; in-process it would have blocked every tick.
    expect(took).toBeGreaterThan(100);
    expect(ticks).toBeGreaterThan(took / 5 / 4);
    expect(worstGap).toBeLessThan(took / 2);
  });

  it.runIf(process.platform === 'linux')('runs at the nice value it was given once start-up is over, not before (Linux: per-thread priority)', async () => {
    // Opened in beforeAll with nice 7, not yet told that start-up is over.
    expect(threadNices()).not.toContain(7);
    await db.yieldToServing();
    expect(threadNices()).toContain(7);
    // Only that thread: this one keeps its own.
    expect(threadNices().filter((n) => n === 7)).toHaveLength(1);
    // It still answers.
    expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('answers REGISTRY_UNAVAILABLE once closed, without hanging', async () => {
    const other = await PgliteThreadDb.open(undefined);
    await other.close();
    await expect(other.query('SELECT 1')).rejects.toMatchObject({ code: 'REGISTRY_UNAVAILABLE' });
  });
});

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
