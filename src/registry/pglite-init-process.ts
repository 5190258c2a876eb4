/**
 * Creates an embedded PGlite database in the directory given as the first argument, then
 * exits. Run as a child process by PgliteDb.open for a new directory: PGlite's initdb step
 * peaks near 800 MB resident (two extra WebAssembly instances, the initdb module, a dump of the
 * new data directory). Freed in-process, much of that stays resident in the allocator's arenas
 * (a worker thread still left ~90 MB); a process returns all of it when it exits.
 */
import { PGlite } from '@electric-sql/pglite';
import { closeSync, fsyncSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pgliteOptions, useBaselineWasmCompiler } from './pglite-settings.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: pglite-init-process.js <data directory>');
useBaselineWasmCompiler();
const pg = new PGlite(dir, pgliteOptions());
await pg.waitReady;
await pg.close();
// initdb wrote the new directory without syncing anything (see pglite-settings.ts, Durability):
// every file and directory goes to disk before the directory is handed over.
syncTree(dir);

function syncTree(at: string): void {
  for (const e of readdirSync(at, { withFileTypes: true })) {
    const p = path.join(at, e.name);
    if (e.isDirectory()) syncTree(p);
    else if (e.isFile()) syncPath(p);
  }
  syncPath(at);
}

function syncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
