/** Locations inside the installed package, valid from src/ (tests) and from dist/src/ (built). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sluice') return dir;
      } catch {
        // not ours; keep walking up
      }
    }
    dir = path.dirname(dir);
  }
  throw new Error('cannot find the sluice package root');
}

export const projectRoot = findRoot();

/** The compiled piscina worker entry (workers always run built JavaScript). */
export const workerEntry = path.join(projectRoot, 'dist', 'src', 'worker', 'entry.js');

/** The compiled script that creates an embedded database (src/registry/pglite-init-process.ts). */
export const pgliteInitProcess = path.join(projectRoot, 'dist', 'src', 'registry', 'pglite-init-process.js');

/** The compiled embedded-database thread (src/registry/pglite-thread-worker.ts). */
export const pgliteThreadEntry = path.join(projectRoot, 'dist', 'src', 'registry', 'pglite-thread-worker.js');

/** The bundled model repository (demo models). */
export const bundledModels = path.join(projectRoot, 'models');

/** The compiled I/O thread entry (src/io/io-thread.ts). */
export const ioThreadEntry = path.join(projectRoot, 'dist', 'src', 'io', 'io-thread.js');

/** The cluster's watchdog process (src/cluster/watchdog.ts). */
export const clusterWatchdogEntry = path.join(projectRoot, 'dist', 'src', 'cluster', 'watchdog.js');
