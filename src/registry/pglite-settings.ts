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
 *   covers the largest migration several times over. Given as `-c` start parameters, so they
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
 */
import v8 from 'node:v8';
import { PGlite, type PGliteOptions } from '@electric-sql/pglite';

export const PGLITE_SETTINGS: readonly string[] = ['shared_buffers=4MB', 'max_connections=10'];

export function pgliteOptions(): PGliteOptions {
  return { startParams: [...PGlite.defaultStartParams, ...PGLITE_SETTINGS.flatMap((s) => ['-c', s])] };
}

let baseline = false;
/** Compile WebAssembly with Liftoff only (see above). Call before the first PGlite is created. */
export function useBaselineWasmCompiler(): void {
  if (baseline) return;
  v8.setFlagsFromString('--liftoff-only');
  baseline = true;
}
