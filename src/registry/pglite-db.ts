/**
 * The embedded default: PGlite (PostgreSQL compiled to WebAssembly) persisted in a directory.
 * One PGlite instance is one connection: it runs one query or transaction at a time, so
 * concurrent calls queue inside it and every transaction is effectively serial. Row locks
 * (`FOR UPDATE`) are then trivially granted, and the same SQL stays correct on PostgreSQL.
 */
import { closeSync, existsSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { PGlite } from '@electric-sql/pglite';
import { pgliteInitProcess } from '../paths.js';
import { checkChannel, mapDbError, queryable, QueryableDb, type Db, type ListenHandlers, type Queryable } from './db.js';
import { lockDirectory } from './dir-lock.js';
import { pgliteWrite } from './pglite-write.js';
import { pgliteOptions, syncToDisk, useBaselineWasmCompiler } from './pglite-settings.js';
import { CHECKPOINT_DEFAULTS, checkpointMetricLines, startCheckpointer, type CheckpointOptions, type Checkpointer, type CheckpointStats } from './pglite-checkpointer.js';

export class PgliteDb extends QueryableDb implements Db {
  readonly kind = 'pglite' as const;

  /** PostgreSQL's checkpoints, which single-user PGlite never takes by itself (pglite-checkpointer.ts). */
  readonly checkpointer: Checkpointer;

  private constructor(private readonly pg: PGlite, private readonly unlock: () => Promise<void>, checkpoints: CheckpointOptions, onStats?: (s: CheckpointStats) => void) {
    super(queryable(pg));
    this.checkpointer = startCheckpointer(this, checkpoints, onStats);
  }

  /**
   * Opens (creating if needed) the database in `dir`, which no other process may have open;
   * in memory when `dir` is undefined. `checkpoints`: when to checkpoint (tests make it sooner);
   * `onStats`: called with the checkpointer's figures after each of its checks.
   */
  static async open(dir: string | undefined, checkpoints: CheckpointOptions = CHECKPOINT_DEFAULTS, onStats?: (s: CheckpointStats) => void): Promise<PgliteDb> {
    let unlock = async (): Promise<void> => {};
    if (dir !== undefined) {
      await mkdir(dir, { recursive: true });
      unlock = await lockDirectory(dir);
      try {
        await removeStaging(dir);
        if (!existsSync(path.join(dir, 'PG_VERSION'))) await createDatabase(dir);
      } catch (e) {
        await unlock();
        throw mapDbError(e);
      }
    }
    useBaselineWasmCompiler();
    const pg = dir === undefined ? new PGlite(pgliteOptions()) : new PGlite(dir, pgliteOptions());
    try {
      await pg.waitReady;
      if (dir !== undefined) syncToDisk(pg);
    } catch (e) {
      await pg.close().catch(() => undefined);
      await unlock();
      throw mapDbError(e);
    }
    return new PgliteDb(pg, unlock, checkpoints, onStats);
  }

  metricLines(): string[] {
    return checkpointMetricLines(this.checkpointer.stats());
  }

  async write(sql: string, params: readonly unknown[]): Promise<void> {
    try {
      await pgliteWrite(this.pg, sql, params);
    } catch (e) {
      throw mapDbError(e);
    }
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
    await this.checkpointer.stop();
    await this.pg.close();
    await this.unlock();
  }
}

const STAGING = '.initdb-';

/** Removes staging directories that earlier starts left beside `dir` (see createDatabase). */
async function removeStaging(dir: string): Promise<void> {
  const prefix = path.basename(dir) + STAGING;
  for (const name of await readdir(path.dirname(dir))) {
    if (name.startsWith(prefix)) await rm(path.join(path.dirname(dir), name), { recursive: true, force: true });
  }
}

/**
 * Creates the database for `dir` (empty, locked by this process) in a child process, in a
 * staging directory beside it that is renamed onto `dir` once complete. The child may outlive
 * this process (killed during a first start): it then writes only to its own staging
 * directory, never to a database a later start has opened, and a half-made database never
 * appears as `dir`. A later start removes such leftovers.
 */
async function createDatabase(dir: string): Promise<void> {
  const staging = `${dir}${STAGING}${process.pid}-${Date.now()}`;
  try {
    await initInChildProcess(staging);
    await rename(staging, dir); // onto the empty directory: atomic on one filesystem
    // The rename is on disk too (the child synced every file of the new database).
    const parent = openSync(path.dirname(dir), 'r');
    try {
      fsyncSync(parent);
    } finally {
      closeSync(parent);
    }
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') throw new Error(`${dir} holds files but no database (no PG_VERSION); move them away`);
    throw e;
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
