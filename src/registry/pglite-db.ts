/**
 * The embedded default: PGlite (PostgreSQL compiled to WebAssembly) persisted in a directory.
 * One PGlite instance is one connection: it runs one query or transaction at a time, so
 * concurrent calls queue inside it and every transaction is effectively serial. Row locks
 * (`FOR UPDATE`) are then trivially granted, and the same SQL stays correct on PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PGlite } from '@electric-sql/pglite';
import { pgliteInitProcess } from '../paths.js';
import { checkChannel, mapDbError, queryable, QueryableDb, type Db, type ListenHandlers, type Queryable } from './db.js';
import { lockDirectory } from './dir-lock.js';
import { pgliteOptions, useBaselineWasmCompiler } from './pglite-settings.js';

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
        if (!existsSync(path.join(dir, 'PG_VERSION'))) await initInChildProcess(dir);
      } catch (e) {
        await unlock();
        throw mapDbError(e);
      }
    }
    useBaselineWasmCompiler();
    const pg = dir === undefined ? new PGlite(pgliteOptions()) : new PGlite(dir, pgliteOptions());
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

/**
 * Creates the database in `dir` in a child process (src/registry/pglite-init-process.ts), which
 * gives all of initdb's memory back when it exits; a worker thread left ~90 MB of it resident.
 */
function initInChildProcess(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [pgliteInitProcess, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`creating the embedded database in ${dir} failed (exit ${code ?? signal}): ${stderr.trim().slice(-1000)}`));
    });
  });
}
