/**
 * An embedded PGlite database is one process's: a second process opening the same directory
 * would corrupt it. A lock file (`<dir>.lock`, holding the owner's pid) refuses that, and is
 * taken over when its owner is gone (a crash leaves it behind).
 */
import { open, readFile, rm } from 'node:fs/promises';
import { SluiceError } from '../errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Takes the lock or throws REGISTRY_UNAVAILABLE naming the process that holds it. */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const file = `${dir}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) {
      throw new SluiceError('REGISTRY_UNAVAILABLE', `the embedded registry database is in use by process ${owner} (one process per data directory; use PostgreSQL to share it)`);
    }
    await rm(file, { force: true }); // stale: its owner is gone
  }
  throw new SluiceError('REGISTRY_UNAVAILABLE', 'cannot lock the embedded registry database');
}
