/**
 * Creates an embedded PGlite database in a directory (`workerData`), then exits. Run in a
 * worker thread by PgliteDb.open for a new directory: PGlite's initdb step leaves two
 * WebAssembly memories behind (~400 MB resident) that the main thread would otherwise keep for
 * its whole life; a worker's memory goes back to the system when the worker exits.
 */
import { workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

const pg = new PGlite(workerData as string);
await pg.waitReady;
await pg.close();
