/**
 * A PostgreSQL connection lost in the middle of a transaction (PgDb.transaction), three ways:
 * the server ends it between two statements (what `pg_ctl stop -m fast` does to every session:
 * FATAL 57P01), the TCP connection closes without a word, and the server stops answering (a
 * network partition). Each time the transaction fails with REGISTRY_UNAVAILABLE within a bounded
 * time, nothing of it is committed, the process keeps running (no uncaught error), and the next
 * transaction gets a working connection.
 *
 * Why this file exists: a pooled client checked out for a transaction had no 'error' listener,
 * so a connection that failed while none of its statements was running (between two of them,
 * or a goodbye read in the same chunk as the previous answer on a busy event loop) emitted an
 * unhandled 'error' and killed the process; the feedback durability test's second outage
 * stalled that way.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { PgDb } from '../../src/registry/pg-db.js';
import { createPgDatabase, describeWith, eventually, postgresService, tcpGate } from '../helpers/services.js';

const CONNECT_TIMEOUT_MS = 1_000;
const QUERY_TIMEOUT_MS = 1_500;
const CLOSE_TIMEOUT_MS = 1_000;

describeWith(postgresService, 'a PostgreSQL connection lost in the middle of a transaction', () => {
  let database: Awaited<ReturnType<typeof createPgDatabase>>;
  let admin: pg.Client;
  let gate: Awaited<ReturnType<typeof tcpGate>>;
  let db: PgDb;
  /** Errors nobody handled while a test ran (an unhandled 'error' event lands here). */
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => {
    uncaught.push(e);
  };

  beforeAll(async () => {
    database = await createPgDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query('CREATE TABLE probe (n int)');
  });
  afterAll(async () => {
    await admin?.end();
    await database?.drop();
  });
  beforeEach(async () => {
    uncaught.length = 0;
    process.on('uncaughtException', onUncaught);
    gate = await tcpGate(database.url);
    const url = new URL(database.url);
    url.port = String(gate.port);
    db = new PgDb(url.toString(), { connectTimeoutMs: CONNECT_TIMEOUT_MS, queryTimeoutMs: QUERY_TIMEOUT_MS, closeTimeoutMs: CLOSE_TIMEOUT_MS });
  });
  afterEach(async () => {
    await gate.close();
    await db.close();
    process.off('uncaughtException', onUncaught);
    await admin.query('TRUNCATE probe');
  });

  /** The transaction's error and how long it took to come. */
  const failure = async (p: Promise<unknown>): Promise<{ error: unknown; ms: number }> => {
    const t0 = performance.now();
    const error = await p.then(() => undefined, (e: unknown) => e);
    return { error, ms: performance.now() - t0 };
  };
  const expectUnavailable = (error: unknown): void => {
    expect(error, 'the transaction should have failed').toBeInstanceOf(SluiceError);
    expect((error as SluiceError).code).toBe('REGISTRY_UNAVAILABLE');
  };
  const probeRows = async (): Promise<number> => Number((await admin.query('SELECT count(*) AS n FROM probe')).rows[0].n);
  /** The pool hands out a working connection again. */
  const expectRecovered = async (): Promise<void> => {
    const rows = await eventually(() => db.transaction((tx) => tx.query<{ one: number }>('SELECT 1 AS one')), 10_000, 'a transaction to succeed again', 100);
    expect(rows).toEqual([{ one: 1 }]);
  };

  it('the server ends the session between two statements (FATAL 57P01, as in a fast shutdown)', async () => {
    const { error } = await failure(db.transaction(async (tx) => {
      const [row] = await tx.query<{ pid: number }>('INSERT INTO probe VALUES (1) RETURNING pg_backend_pid() AS pid');
      const pid = row!.pid;
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      // Let the server's goodbye arrive while no statement of this transaction is running.
      await eventually(async () => ((await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rows.length === 0 ? true : undefined), 5_000, 'the session to end');
      await new Promise((r) => setTimeout(r, 100));
      await tx.query('INSERT INTO probe VALUES (2)');
    }));
    expectUnavailable(error);
    expect(uncaught).toEqual([]);
    expect(await probeRows()).toBe(0);
    await expectRecovered();
    expect(uncaught).toEqual([]);
  });

  it('the TCP connection closes between two statements, without a word from the server', async () => {
    const { error } = await failure(db.transaction(async (tx) => {
      await tx.query('INSERT INTO probe VALUES (1)');
      gate.down();
      await new Promise((r) => setTimeout(r, 200));
      await tx.query('INSERT INTO probe VALUES (2)');
    }));
    expectUnavailable(error);
    expect(uncaught).toEqual([]);
    // While it is down, a new transaction fails at once too.
    expectUnavailable((await failure(db.transaction((tx) => tx.query('SELECT 1')))).error);
    gate.up();
    await expectRecovered();
    // The server rolled the cut transaction back when its connection closed.
    await eventually(async () => ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname = current_database()")).rows.length === 0 ? true : undefined), 10_000, 'the cut session to go');
    expect(await probeRows()).toBe(0);
    expect(uncaught).toEqual([]);
  });

  it('the server stops answering in the middle of a transaction: it fails within the query timeout, and the connection is not reused', async () => {
    const { error, ms } = await failure(db.transaction(async (tx) => {
      await tx.query('INSERT INTO probe VALUES (1)');
      gate.silence();
      await tx.query('INSERT INTO probe VALUES (2)');
    }));
    expectUnavailable(error);
    expect(ms).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(QUERY_TIMEOUT_MS + 1_500);
    // A new connection through the silent network is given up within the connect timeout.
    const connect = await failure(db.transaction((tx) => tx.query('SELECT 1')));
    expectUnavailable(connect.error);
    expect(connect.ms).toBeLessThan(CONNECT_TIMEOUT_MS + 1_500);
    gate.up();
    await expectRecovered();
    expect(uncaught).toEqual([]);
    // The abandoned transaction never committed (its connection was closed, not returned to the pool).
    await eventually(async () => ((await admin.query("SELECT 1 FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' AND datname = current_database()")).rows.length === 0 ? true : undefined), 10_000, 'the abandoned session to go');
    expect(await probeRows()).toBe(0);
  });
  it('closes within its deadline while the server is silent (a partition at shutdown), with LISTEN and a statement in flight', async () => {
    await db.query('SELECT 1');
    await db.listen('sluice_probe', { onNotify: () => undefined });
    await eventually(() => (db.listening ? true : undefined), 5_000, 'LISTEN to be up');
    gate.silence();
    const inFlight = db.query('SELECT pg_sleep(0.1)').catch(() => undefined);
    const t0 = performance.now();
    await db.close();
    const took = performance.now() - t0;
    expect(took).toBeLessThan(CLOSE_TIMEOUT_MS + 500);
    await inFlight;
    expect(uncaught).toEqual([]);
  });
});
