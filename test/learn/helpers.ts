/** Shared pieces of the decision and feedback tests. */
import { unavailable, type Db, type Queryable } from '../../src/registry/db.js';
import type { Decision } from '../../src/learn/decision.js';
import { newEventId } from '../../src/learn/event-id.js';

/**
 * A real database behind a switch: while `down`, every call fails the way an unreachable
 * database does (REGISTRY_UNAVAILABLE), without disturbing the other tests sharing the server.
 * Counts statements and transactions that reached the database.
 */
export function switchable(db: Db): { db: Db; down(): void; up(): void; queries: number; transactions: number; inserts: string[] } {
  let isDown = false;
  const state = { queries: 0, transactions: 0, inserts: [] as string[] };
  const gate = (): void => {
    if (isDown) throw unavailable(new Error('switched off by the test'));
  };
  const counted = (q: Queryable): Queryable => ({
    async query(sql, params) {
      gate();
      state.queries++;
      if (/^\s*INSERT/i.test(sql)) state.inserts.push(sql.slice(0, 40));
      return q.query(sql, params);
    },
    async exec(sql) {
      gate();
      return q.exec(sql);
    },
  });
  const outer = counted(db);
  const wrapped: Db = {
    kind: db.kind,
    query: outer.query,
    exec: outer.exec,
    async transaction(fn) {
      gate();
      state.transactions++;
      return db.transaction((tx) => fn(counted(tx)));
    },
    listen: (c, h) => db.listen(c, h),
    close: () => db.close(),
  };
  return {
    db: wrapped,
    down: () => {
      isDown = true;
    },
    up: () => {
      isDown = false;
    },
    get queries() {
      return state.queries;
    },
    get transactions() {
      return state.transactions;
    },
    get inserts() {
      return state.inserts;
    },
  };
}

export function decision(over: Partial<Decision> = {}): Decision {
  return { eventId: newEventId(), at: Date.now(), model: 'm', variant: 'a', version: '1', propensity: 0.9, routeGen: 1, ...over };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
