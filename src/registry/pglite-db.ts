/**
 * The embedded default: PGlite (PostgreSQL compiled to WebAssembly) persisted in a directory.
 * One PGlite instance is one connection: it runs one query or transaction at a time, so
 * concurrent calls queue inside it and every transaction is effectively serial. Row locks
 * (`FOR UPDATE`) are then trivially granted, and the same SQL stays correct on PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { pgliteInitWorker } from '../paths.js';
import { checkChannel, mapDbError, queryable, QueryableDb, type Db, type ListenHandlers, type Queryable } from './db.js';
import { lockDirectory } from './dir-lock.js';

export class PgliteDb extends QueryableDb implements Db {
  readonly kind = 'pglite' as const;

  private constructor(private readonly pg: PGlite, private readonly unlock: () => Promise<void>) {
    super(queryable(pg));
  }

  /**
   * Opens (creating if needed) the database in `dir`, which no other process may have open;
   * in memory when `dir` is undefined.
   */
  static async open(dir: string | undefined): Promise<PgliteDb> {
    let unlock = async (): Promise<void> => {};
    if (dir !== undefined) {
      await mkdir(dir, { recursive: true });
      unlock = await lockDirectory(dir);
      try {
        if (!existsSync(path.join(dir, 'PG_VERSION'))) await initInWorker(dir);
      } catch (e) {
        await unlock();
        throw mapDbError(e);
      }
    }
    const pg = dir === undefined ? new PGlite() : new PGlite(dir);
    try {
      await pg.waitReady;
    } catch (e) {
      await unlock();
      throw mapDbError(e);
    }
    return new PgliteDb(pg, unlock);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    // Errors from `fn` pass unchanged (its queries are mapped already); only a failure of the
    // transaction itself (BEGIN/COMMIT, a closed database) is mapped here.
    let fromFn = false;
    try {
      return await this.pg.transaction(async (tx) => {
        try {
          return await fn(queryable(tx));
        } catch (e) {
          fromFn = true;
          throw e;
        }
      });
    } catch (e) {
      throw fromFn ? e : mapDbError(e);
    }
  }

  async listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    checkChannel(channel);
    const cb = (payload: string): void => handlers.onNotify(payload);
    let unlisten: () => Promise<void>;
    try {
      unlisten = await this.pg.listen(channel, cb);
    } catch (e) {
      throw mapDbError(e);
    }
    // Embedded: the "connection" never drops, so LISTEN is active once and for good.
    handlers.onListening?.();
    return async () => {
      if (!this.pg.closed) await unlisten();
    };
  }

  async close(): Promise<void> {
    if (this.pg.closed) return;
    await this.pg.close();
    await this.unlock();
  }
}

/** Creates the database in `dir` in a worker thread, whose memory is returned when it exits. */
function initInWorker(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let failure: unknown;
    const w = new Worker(pgliteInitWorker, { workerData: dir });
    w.once('error', (e) => (failure = e));
    w.once('exit', (code) => {
      if (code === 0 && failure === undefined) resolve();
      else reject(failure ?? new Error(`creating the embedded database in ${dir} failed (worker exit ${code})`));
    });
  });
}
