/**
 * Creates an embedded PGlite database in the directory given as the first argument, then
 * exits. Run as a child process by PgliteDb.open for a new directory: PGlite's initdb step
 * peaks near 800 MB resident (two extra WebAssembly instances, the initdb module, a dump of the
 * new data directory). Freed in-process, much of that stays resident in the allocator's arenas
 * (a worker thread still left ~90 MB); a process returns all of it when it exits.
 */
import { PGlite } from '@electric-sql/pglite';
import { pgliteOptions, useBaselineWasmCompiler } from './pglite-settings.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: pglite-init-process.js <data directory>');
useBaselineWasmCompiler();
const pg = new PGlite(dir, pgliteOptions());
await pg.waitReady;
await pg.close();
