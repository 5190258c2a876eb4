/**
 * retryConflicts (src/registry/db.ts) on PostgreSQL: two transactions that lock two rows in
 * opposite orders deadlock; the server aborts one (40P01), which is run again and commits, so
 * both callers succeed. Without it the victim's caller gets the error. (PGlite has one
 * connection: its transactions run one at a time and cannot deadlock.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { retryConflicts, sqlState, type Db } from '../../src/registry/db.js';
import { describeWith, postgresBackend, postgresService, type TestDb } from '../helpers/services.js';

function gate(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describeWith(postgresService, 'retryConflicts (PostgreSQL)', () => {
  let t: TestDb;
  let other: Db;
  beforeAll(async () => {
    t = await postgresBackend.open();
    other = await t.connect!();
    await t.db.exec('CREATE TABLE conflict_test (id int PRIMARY KEY, n int NOT NULL); INSERT INTO conflict_test VALUES (1, 0), (2, 0)');
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  /** Two transactions, each updating `first` then (once the other has its first row) `second`. */
  async function deadlock(wrap: <T>(fn: () => Promise<T>) => Promise<T>): Promise<{ results: PromiseSettledResult<void>[]; runs: number }> {
    let runs = 0;
    const gates = [gate(), gate()];
    const side = (db: Db, me: number) => wrap(() => db.transaction(async (tx) => {
      runs++;
      const [first, second] = me === 0 ? [1, 2] : [2, 1];
      await tx.query('UPDATE conflict_test SET n = n + 1 WHERE id = $1', [first]);
      gates[me]!.resolve();
      await gates[1 - me]!.promise;
      await tx.query('UPDATE conflict_test SET n = n + 1 WHERE id = $1', [second]);
    }));
    const results = await Promise.allSettled([side(t.db, 0), side(other, 1)]);
    return { results, runs };
  }

  it('runs the deadlock victim again: both commit', async () => {
    const { results, runs } = await deadlock(retryConflicts);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    expect(runs).toBe(3); // the victim ran twice
    expect(await t.db.query('SELECT id, n FROM conflict_test ORDER BY id')).toEqual([{ id: 1, n: 2 }, { id: 2, n: 2 }]);
  });

  it('without it, the victim\'s caller gets 40P01 (the case retryConflicts is for)', async () => {
    const { results } = await deadlock((fn) => fn());
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failed).toHaveLength(1);
    expect(sqlState(failed[0]!.reason)).toBe('40P01');
  });

  it('passes other errors through at once', async () => {
    let runs = 0;
    await expect(retryConflicts(() => {
      runs++;
      return t.db.query('SELECT 1/0');
    })).rejects.toMatchObject({ code: '22012' });
    expect(runs).toBe(1);
  });
});
