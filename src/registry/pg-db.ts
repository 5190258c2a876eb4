/**
 * PostgreSQL through a `pg` Pool, plus one dedicated connection for LISTEN (pg-listener.ts).
 *
 * Fails fast when the server is unreachable: connecting is bounded by `connectTimeoutMs` (also
 * the longest wait for a free pooled connection), every query by `queryTimeoutMs` (client side,
 * for a silent network) and `statement_timeout` (server side). A transaction whose client
 * vanished cannot keep its row locks longer than `idle_in_transaction_session_timeout`.
 * Recovery needs nothing: the Pool opens new connections on demand and drops broken ones.
 */
import pg from 'pg';
import { errorFields, log } from '../log.js';
import { checkChannel, isUnavailable, mapDbError, queryable, QueryableDb, type Db, type ListenHandlers, type Queryable } from './db.js';
import { PgListener } from './pg-listener.js';

export interface PgOptions {
  connectTimeoutMs: number;
  queryTimeoutMs: number;
  poolSize: number;
  /** Health check period of the LISTEN connection. */
  listenHealthMs: number;
  /** Longest close() waits for connections to end before leaving them (the process is exiting). */
  closeTimeoutMs: number;
}

export const DEFAULT_PG_OPTIONS: PgOptions = { connectTimeoutMs: 3_000, queryTimeoutMs: 5_000, poolSize: 10, listenHealthMs: 2_000, closeTimeoutMs: 3_000 };

/**
 * A pg Pool or pooled client, errors mapped. `exec` passes no parameters, so pg uses the simple
 * protocol, which allows several statements.
 */
function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return queryable({ query: (sql, params) => client.query(sql, params), exec: (sql) => client.query(sql) });
}

export class PgDb extends QueryableDb implements Db {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly listener: PgListener;
  private readonly closeTimeoutMs: number;

  constructor(connectionString: string, options: Partial<PgOptions> = {}) {
    const o = { ...DEFAULT_PG_OPTIONS, ...options };
    const clientConfig: pg.ClientConfig = {
      connectionString,
      connectionTimeoutMillis: o.connectTimeoutMs,
      query_timeout: o.queryTimeoutMs,
      statement_timeout: o.queryTimeoutMs,
      idle_in_transaction_session_timeout: Math.max(10_000, 2 * o.queryTimeoutMs),
      keepAlive: true,
      application_name: 'sluice',
    };
    const pool = new pg.Pool({ ...clientConfig, max: o.poolSize, idleTimeoutMillis: 30_000 });
    super(wrap(pool));
    this.pool = pool;
    this.closeTimeoutMs = o.closeTimeoutMs;
    // An idle pooled connection that dies (server restart) is removed by the Pool; without a
    // handler the 'error' event would crash the process.
    this.pool.on('error', (e) => log.warn('registry: idle database connection lost', errorFields(e)));
    this.listener = new PgListener(clientConfig, { healthMs: o.listenHealthMs, minBackoffMs: 100, maxBackoffMs: 1_000 });
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw mapDbError(e);
    }
    // A connection that failed (or timed out mid-query, still busy) is destroyed, not reused.
    let broken: Error | undefined;
    // The Pool listens for 'error' only on idle clients. A checked-out one whose connection
    // fails while none of its statements is running (between two of them; or the server's
    // goodbye read in the same chunk as the previous answer) emits 'error': unheard, it would
    // be thrown from the socket's callback and end the process. Heard here, the client is
    // marked unusable by pg, so the transaction's next statement (or COMMIT) fails at once.
    const onError = (e: Error): void => {
      broken ??= e;
    };
    client.on('error', onError);
    const tx = wrap(client);
    try {
      await tx.query('BEGIN');
      const result = await fn(tx);
      await tx.query('COMMIT');
      return result;
    } catch (e) {
      if (broken || isUnavailable(e)) {
        // Closing the connection makes the server roll back; ROLLBACK could hang behind it.
        broken ??= e instanceof Error ? e : new Error('connection failed');
      } else {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          broken = rollbackError instanceof Error ? rollbackError : new Error('rollback failed');
        }
      }
      throw e;
    } finally {
      // In one synchronous step: released, the Pool's own listener is back.
      client.off('error', onError);
      client.release(broken);
    }
  }

  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    return this.listener.subscribe(checkChannel(channel), handlers);
  }

  /** Whether the LISTEN connection is up (for health reporting and tests). */
  get listening(): boolean {
    return this.listener.connected;
  }

  /**
   * Ends the LISTEN connection and the pool, waiting at most closeTimeoutMs: through a network
   * partition pool.end() waits for connections whose statements never answer, which held a
   * SIGTERM's shutdown for 15 s and more. Past the deadline the connections are left to the
   * process's exit.
   */
  async close(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.closeTimeoutMs);
      timer.unref();
    });
    const ended = (async () => {
      await this.listener.close();
      await this.pool.end().catch(() => undefined);
      return 'ended' as const;
    })();
    const how = await Promise.race([ended, deadline]);
    clearTimeout(timer);
    if (how === 'timeout') log.warn('registry: PostgreSQL connections did not close in time (database unreachable?); leaving them', { timeoutMs: this.closeTimeoutMs });
  }
}
