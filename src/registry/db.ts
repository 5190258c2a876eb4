/**
 * The one database interface the registry and API keys are written against, with two
 * implementations: embedded PGlite (the default, `pglite-db.ts`) and PostgreSQL through a `pg`
 * Pool (`pg-db.ts`). Every query, test and migration is shared between them.
 *
 * Rules: every value goes in as a parameter (`$1`, `$2`, ...), never spliced into SQL text;
 * `exec` runs trusted multi-statement SQL (the migration files) and nothing else.
 */
import { SluiceError } from '../errors.js';

export type Row = Record<string, unknown>;

export interface Queryable {
  /** One parameterised statement; returns its rows. */
  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Trusted SQL that may hold several statements (migration files only: never input). */
  exec(sql: string): Promise<void>;
}

export interface ListenHandlers {
  /** A notification's payload, in commit order. */
  onNotify(payload: string): void;
  /**
   * LISTEN became active: on the first connection and again after every reconnect.
   * Notifications sent while it was down are lost, so a listener re-reads its state here.
   */
  onListening?(): void;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /**
   * One statement whose rows nobody reads, outside any transaction: as `query`, with
   * parameters limited to strings, numbers, booleans, null and byte arrays (sent in binary, as
   * both drivers send a Buffer). The embedded database takes it without PGlite's per-parameter
   * copies (pglite-write.ts); the decision log writes its chunks this way. Optional: a Db
   * without it is written to with `query`.
   */
  write?(sql: string, params: readonly unknown[]): Promise<void>;
  /**
   * Runs `fn` in one transaction (READ COMMITTED): commits when it resolves, rolls back when it
   * throws. `fn` must do its queries through `tx` only.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Follows a NOTIFY channel. Resolves after the first attempt to LISTEN, successful or not:
   * when the database is unreachable it keeps retrying in the background and calls
   * `onListening` once it gets through. Returns the function that stops listening.
   */
  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>>;
  /** Start-up is over and serving comes first (the embedded database lowers its thread's priority). */
  yieldToServing?(): Promise<void>;
  /** The database's own figures for /metrics (the embedded one's checkpoints). */
  metricLines?(): string[];
  close(): Promise<void>;
}

/** What each driver offers the wrapper below: parameterised queries, and multi-statement SQL. */
export interface Driver {
  query(sql: string, params: unknown[]): Promise<{ rows: unknown[] }>;
  exec(sql: string): Promise<unknown>;
}

/** A driver (connection, pool or transaction) as a Queryable whose errors are mapped (mapDbError). */
export function queryable(driver: Driver): Queryable {
  return {
    async query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
      try {
        return (await driver.query(sql, params as unknown[])).rows as T[];
      } catch (e) {
        throw mapDbError(e);
      }
    },
    async exec(sql: string): Promise<void> {
      try {
        await driver.exec(sql);
      } catch (e) {
        throw mapDbError(e);
      }
    },
  };
}

/** A statement whose rows are not read: through the database's `write` where it has one, else `query`. */
export async function writeOnly(db: Db, sql: string, params: readonly unknown[]): Promise<void> {
  if (db.write) await db.write(sql, params);
  else await db.query(sql, params);
}

/** The statements both implementations run outside a transaction, through one Queryable. */
export abstract class QueryableDb implements Queryable {
  protected constructor(private readonly q: Queryable) {}

  query<T extends Row = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.q.query<T>(sql, params);
  }

  exec(sql: string): Promise<void> {
    return this.q.exec(sql);
  }
}

/** Channel names are identifiers in LISTEN (they cannot be parameters): only constants pass. */
export const CHANNEL_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkChannel(channel: string): string {
  if (!CHANNEL_PATTERN.test(channel)) throw new SluiceError('INVALID_ARGUMENT', 'bad notification channel name');
  return channel;
}

/** SQLSTATEs that mean "the database is not there right now", not "your query is wrong". */
const UNAVAILABLE_SQLSTATE = /^(08...|57P0[1-5]|53300|57014)$/;

/** A server-reported SQL error (has a SQLSTATE), as opposed to a transport failure. */
export function sqlState(e: unknown): string | undefined {
  const err = e as { code?: unknown; severity?: unknown } | null;
  // `severity` tells a server error from a Node system error such as EPIPE (also 5 letters).
  return typeof err?.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) && typeof err.severity === 'string' ? err.code : undefined;
}

/**
 * Whether an error from a database call means the database is unreachable (or timed out):
 * connection-class SQLSTATEs, shutdowns, timeouts, and every transport error without a SQLSTATE.
 */
export function isUnavailable(e: unknown): boolean {
  if (e instanceof SluiceError) return e.code === 'REGISTRY_UNAVAILABLE';
  const state = sqlState(e);
  if (state !== undefined) return UNAVAILABLE_SQLSTATE.test(state);
  return e instanceof Error;
}

/** The error callers see for an unreachable database: coded, retryable, and without the URL. */
export function unavailable(cause: unknown): SluiceError {
  return new SluiceError('REGISTRY_UNAVAILABLE', 'the registry database cannot be reached; try again shortly', { cause });
}

/** Maps a failed database call: unreachable -> REGISTRY_UNAVAILABLE, anything else unchanged. */
export function mapDbError(e: unknown): unknown {
  return isUnavailable(e) && !(e instanceof SluiceError) ? unavailable(e) : e;
}

/** SQLSTATEs of a transaction the server aborted for what ran beside it: deadlock, serialization failure. */
const CONFLICT_SQLSTATE = new Set(['40P01', '40001']);

/**
 * Runs `fn` (a whole transaction) again when the server aborted it for a deadlock or a
 * serialization failure, up to `attempts` runs in all: transactions that update shared rows
 * (experiment sums) beside other transactions, of this process or another replica, can be
 * chosen as a deadlock's victim, and running them again is the remedy PostgreSQL documents.
 */
export async function retryConflicts<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !isConflict(e)) throw e;
    }
  }
}

/** Whether the server aborted the statement for a deadlock or a serialization failure (transient). */
export function isConflict(e: unknown): boolean {
  const state = sqlState(e);
  return state !== undefined && CONFLICT_SQLSTATE.has(state);
}
