/**
 * A full disk under the artifact store (issue #10, chaos "disk-full"): registering a version is
 * refused with the coded, retryable STORAGE_FULL (507), not INTERNAL, and leaves no partial
 * file. The disk is a real 1 MiB tmpfs, which needs root (CI and these machines run as root).
 */
import { execFileSync } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStorageFull, SluiceError } from '../../src/errors.js';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { Registry } from '../../src/registry/registry.js';
import { describeEachDb, tempDir, type TestDb } from '../helpers/services.js';
import { registerModel, uniqueName } from './models.js';

describe('isStorageFull', () => {
  it('finds ENOSPC, EDQUOT and SQLSTATE 53100 anywhere in the cause chain, and nothing else', () => {
    const enospc = Object.assign(new Error('write'), { code: 'ENOSPC' });
    expect(isStorageFull(enospc)).toBe(true);
    expect(isStorageFull(new SluiceError('ARTIFACT_UNAVAILABLE', 'x', { cause: enospc }))).toBe(true);
    expect(isStorageFull(Object.assign(new Error('db'), { code: '53100' }))).toBe(true);
    expect(isStorageFull(Object.assign(new Error('q'), { code: 'EDQUOT' }))).toBe(true);
    expect(isStorageFull(Object.assign(new Error('other'), { code: 'EACCES' }))).toBe(false);
    expect(isStorageFull(undefined)).toBe(false);
  });
});

const root = process.getuid?.() === 0;

describeEachDb('registry on a full disk', (backend) => {
  let t: TestDb;
  let mnt: { dir: string; cleanup: () => Promise<void> };
  let registry: Registry;

  beforeAll(async () => {
    t = await backend.open();
    mnt = await tempDir('sluice-full-');
    if (!root) return;
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt.dir]);
    registry = new Registry(t.db, new LocalDirectoryStore(path.join(mnt.dir, 'artifacts')));
  });
  afterAll(async () => {
    if (root) execFileSync('umount', [mnt.dir]);
    await mnt?.cleanup();
    await t?.cleanup();
  });

  it.skipIf(!root)('(needs root to mount a tmpfs) refuses with STORAGE_FULL, leaves no partial file, and registers once there is room', async () => {
    const name = uniqueName('full');
    // Fill the disk to the last byte, then register an ordinary version.
    const filler = path.join(mnt.dir, 'filler');
    await writeFile(filler, Buffer.alloc(2 * 1024 * 1024)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOSPC') throw e;
    });
    const err = await registerModel(registry, name, { version: '1.0.0' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SluiceError);
    expect((err as SluiceError).code).toBe('STORAGE_FULL');
    const tmp = await readdir(path.join(mnt.dir, 'artifacts', 'tmp')).catch(() => []);
    expect(tmp).toEqual([]);
    await rm(filler);
    const small = await registerModel(registry, name, { version: '1.0.0' });
    expect(small.model).toBe(name);
  });
});
