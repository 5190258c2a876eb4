/**
 * How the embedded database is started, chosen for its resident memory (issue #10; the bound is
 * test/integration/footprint.test.ts, README "Set-up" has the figures):
 *
 * - PostgreSQL settings. PGlite's postgresql.conf keeps PostgreSQL's server defaults, sized for
 *   a shared server: shared_buffers = 128MB, which PGlite's WebAssembly heap touches in full at
 *   start (each MB of shared_buffers is a MB resident), and max_connections = 100, which sizes
 *   the lock and process tables although PGlite is one single-user backend. The registry is a
 *   few small tables read mostly from the per-backend catalog and plan caches, and the
 *   decision and feedback tables are appended to (their hot pages are the last few), so 4 MB
 *   of buffers (512 pages) serves them (8 MB cost ~5 MB more resident on a first start and
 *   wrote decisions no faster: `npm run bench -- feedback`, 2026-12-02); 10 connections' worth of lock table (640 locks)
 *   covers the largest migration several times over. min_wal_size = 32MB (two segments, where
 *   the default keeps 80 MB): how much WAL a checkpoint keeps for reuse at the least
 *   (pglite-checkpointer.ts takes the checkpoints). Given as `-c` start parameters, so they
 *   apply to existing data directories as well as new ones, without editing their config files.
 *
 * - WebAssembly compiler. V8 compiles PGlite's 9 MB module with Liftoff (its baseline
 *   compiler), then recompiles hot functions with TurboFan in background threads; TurboFan's
 *   compile-time memory stays in those threads' malloc arenas afterwards (~35 MB here).
 *   Liftoff alone keeps that out, and on a small machine the background recompiles would
 *   compete with serving for CPU. It is a process-wide V8 flag: it applies to WebAssembly
 *   compiled after it is set, and Sluice compiles no other WebAssembly. Measured 2026-12-03
 *   (a note of 2026-12-02 here had it costing 60-70% of the decision log's write rate, from
 *   a different measurement; this one is same-run, interleaved): without this call the
 *   server read 16-55 MB more 2 s after traffic and ~20 MB more after 20 s idle, while
 *   `npm run bench -- feedback` wrote decision rows as fast with it as without (69.7k/s
 *   against 64.1k/s, same run); `node --liftoff-only` on the command line wrote 44.5k/s,
 *   so the flag set here at run time does not hold every function on Liftoff.
 *
 * - Durability. PGlite starts PostgreSQL with `-F` (fsync off), and its Node file system layer
 *   (Emscripten's NODEFS) has no fsync: a commit reached the page cache, not the disk, so an
 *   operating-system crash could lose acknowledged feedback and registry changes. Sluice drops
 *   `-F`, has PostgreSQL sync its WAL with fsync() (`wal_sync_method=fsync`: Emscripten's
 *   fdatasync is a no-op that never reaches the file system, its fsync calls the stream's own)
 *   and gives NODEFS streams an fsync that calls the real one (`syncToDisk`). A commit then
 *   returns after its WAL is on disk, as on PostgreSQL. Its cost is in README "Model registry". A new
 *   database (initdb in pglite-init-process.ts, which writes without syncing) is synced file by
 *   file before it is renamed into place.
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';

export const PGLITE_SETTINGS: readonly string[] = ['shared_buffers=4MB', 'max_connections=10', 'wal_sync_method=fsync', 'min_wal_size=32MB'];

export function pgliteOptions(): PGliteOptions {
  const params = PGlite.defaultStartParams.filter((p) => p !== '-F');
  return { startParams: [...params, ...PGLITE_SETTINGS.flatMap((s) => ['-c', s])] };
}

/** Where PGlite mounts its data directory in the WebAssembly module's file system. */
const PGDATA = '/pglite/data';

interface NodeFsStream {
  nfd?: number;
}
interface NodeFsType {
  stream_ops: { fsync?: (stream: NodeFsStream) => number };
  tryFSOperation?: <T>(f: () => T) => T;
  realPath?: unknown;
}
interface EmscriptenFs {
  lookupPath(path: string): { node: { mount: { type: NodeFsType } } };
}

/**
 * Makes fsync() in a PGlite whose data directory is on disk reach the disk (see Durability
 * above). Throws if the module's file system is not shaped as expected (the PGlite version is
 * pinned; a new one must pass test/registry/pglite-durability.test.ts): silently running
 * without it would break the promise that acknowledged data survives a crash.
 */
export function syncToDisk(pg: PGlite): void {
  const mod = (pg as unknown as { mod?: { FS?: EmscriptenFs } }).mod;
  const type = mod?.FS?.lookupPath(PGDATA).node.mount.type;
  if (!type?.stream_ops || typeof type.realPath !== 'function') throw new Error(`PGlite: ${PGDATA} is not a NODEFS mount; cannot make its commits durable`);
  const tryOp = type.tryFSOperation?.bind(type) ?? (<T>(f: () => T) => f());
  type.stream_ops.fsync = (stream) => {
    // Through NODEFS's own error mapping: a failed fsync becomes an errno PostgreSQL reports
    // (it then stops, as it must: the WAL's state on disk is unknown), not a JavaScript throw.
    if (stream.nfd !== undefined) tryOp(() => fs.fsyncSync(stream.nfd!));
    return 0;
  };
}

let baseline = false;
/** Compile WebAssembly with Liftoff only (see above). Call before the first PGlite is created. */
export function useBaselineWasmCompiler(): void {
  if (baseline) return;
  v8.setFlagsFromString('--liftoff-only');
  baseline = true;
}
