import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/artifacts/integrity.js';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { openArtifactStore, removeStaleArtifactTemp } from '../../src/artifacts/open.js';
import { openRegistry } from '../../src/registry/open.js';
import { artifactKey } from '../../src/artifacts/store.js';
import { tempDir, testConfig } from '../helpers/services.js';

describe('local directory artifact store', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let store: LocalDirectoryStore;

  beforeAll(async () => {
    tmp = await tempDir('sluice-art-');
    store = new LocalDirectoryStore(path.join(tmp.dir, 'artifacts'));
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  const leftovers = async (): Promise<string[]> => readdir(path.join(store.root, 'tmp')).catch(() => []);

  it('stores bytes under their content address, once, and reads them back verified', async () => {
    const bytes = randomBytes(10_000);
    const info = await store.put(bytes);
    expect(info).toEqual({ key: `sha256/${sha256Hex(bytes)}`, sha256: sha256Hex(bytes), size: 10_000 });
    expect(await readFile(store.pathOf(info.key))).toEqual(bytes);
    expect(await store.put(Buffer.from(bytes))).toEqual(info);
    expect(await readdir(path.join(store.root, 'sha256'))).toEqual([info.sha256]);
    expect(Buffer.from(await store.get(info.key, info.sha256))).toEqual(bytes);
    expect(await store.exists(info.key)).toBe(true);
    expect(await store.exists(artifactKey('0'.repeat(64)))).toBe(false);
    expect(await leftovers()).toEqual([]);
  });

  it('takes streams (async iterables and Node Readables), reporting progress', async () => {
    const bytes = randomBytes(300_000);
    const progress: number[] = [];
    const info = await store.put(Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]), { onProgress: (n) => progress.push(n) });
    expect(info.sha256).toBe(sha256Hex(bytes));
    expect(progress.at(-1)).toBe(300_000);
    async function* gen(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < bytes.length; i += 4096) yield bytes.subarray(i, i + 4096);
    }
    expect(await store.put(gen())).toEqual(info);
  });

  it('refuses a stream that does not match the expected hash, keeping nothing', async () => {
    const bytes = randomBytes(1000);
    const expected = sha256Hex(randomBytes(1000));
    await expect(store.put(Readable.from([bytes]), { expectedSha256: expected })).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
    expect(await store.exists(artifactKey(sha256Hex(bytes)))).toBe(false);
    expect(await leftovers()).toEqual([]);
  });

  it('leaves nothing behind when the stream fails half-way', async () => {
    async function* broken(): AsyncIterable<Uint8Array> {
      yield randomBytes(1000);
      throw new Error('client went away');
    }
    await expect(store.put(broken())).rejects.toThrow('client went away');
    expect(await leftovers()).toEqual([]);
  });

  it('never returns corrupted or truncated bytes (ARTIFACT_INTEGRITY)', async () => {
    const bytes = randomBytes(5000);
    const info = await store.put(bytes);
    const corrupted = Buffer.from(bytes);
    corrupted[1234] = corrupted[1234]! ^ 0xff;
    await writeFile(store.pathOf(info.key), corrupted);
    await expect(store.get(info.key, info.sha256)).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
    await writeFile(store.pathOf(info.key), bytes.subarray(0, 4000));
    await expect(store.get(info.key, info.sha256)).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
    // A good file read against another expected hash is refused too.
    await writeFile(store.pathOf(info.key), bytes);
    await expect(store.get(info.key, sha256Hex(randomBytes(8)))).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
    expect(Buffer.from(await store.get(info.key, info.sha256))).toEqual(bytes);
  });

  it('says ARTIFACT_UNAVAILABLE for a missing artifact', async () => {
    const sha = sha256Hex(randomBytes(16));
    await expect(store.get(artifactKey(sha), sha)).rejects.toMatchObject({ code: 'ARTIFACT_UNAVAILABLE' });
  });

  it('accepts only content-addressed keys (they become paths)', async () => {
    const sha = 'ab'.repeat(32);
    for (const key of ['../../etc/passwd', 'sha256/../../x', `sha256/${sha}/..`, `SHA256/${sha}`, `sha256/${sha.toUpperCase()}`, '']) {
      await expect(store.get(key, sha), key).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    await expect(store.get(`sha256/${sha}`, 'nope')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('is what the configuration gives without an S3 bucket', async () => {
    const s = await openArtifactStore(testConfig({ dataDir: tmp.dir, s3Bucket: undefined }));
    expect(s).toBeInstanceOf(LocalDirectoryStore);
    expect((s as LocalDirectoryStore).root).toBe(path.join(tmp.dir, 'artifacts'));
  });

  it('at open, removes the partial files dead processes left, and nothing else', async () => {
    const t = await tempDir('sluice-art-tmp-');
    try {
      // A pid that surely ran and is gone: a child that has exited.
      const dead = spawnSync(process.execPath, ['-e', '']).pid!;
      const hex = () => randomBytes(8).toString('hex');
      const dirs = ['artifacts/tmp', 'artifact-cache/tmp', 'tmp'].map((d) => path.join(t.dir, d));
      for (const d of dirs) await mkdir(d, { recursive: true });
      const stale = [
        path.join(dirs[0]!, `.tmp-${dead}-${hex()}`),
        path.join(dirs[1]!, `.tmp-${dead}-${hex()}`),
        path.join(dirs[2]!, `.tmp-${dead}-${hex()}`),
        // This process's pid (containers reuse pid 1), but written before this process started.
        path.join(dirs[0]!, `.tmp-${process.pid}-${hex()}`),
      ];
      const kept = [
        path.join(dirs[0]!, `.tmp-${process.ppid}-${hex()}`), // a live process may be writing it
        path.join(dirs[0]!, `.tmp-${process.pid}-${hex()}`), // this process's own, in progress
        path.join(dirs[0]!, 'notes.txt'), // not a name a store makes
        path.join(t.dir, 'artifacts/sha256', 'a'.repeat(64)), // a real artifact
      ];
      await mkdir(path.join(t.dir, 'artifacts/sha256'), { recursive: true });
      for (const f of [...stale, ...kept]) await writeFile(f, randomBytes(1000));
      const before = new Date(Date.now() - performance.now() - 60_000);
      await utimes(stale[3]!, before, before);

      // openRegistry (what start-up runs) cleans them before anything is written.
      const services = await openRegistry(testConfig({ dataDir: t.dir, s3Bucket: undefined }), { bootstrapAdmin: false });
      await services.close();
      for (const f of stale) await expect(readFile(f)).rejects.toMatchObject({ code: 'ENOENT' });
      for (const f of kept) expect((await readFile(f)).byteLength).toBe(1000);
      expect(await removeStaleArtifactTemp(testConfig({ dataDir: t.dir }))).toEqual({ files: 0, bytes: 0 });
    } finally {
      await t.cleanup();
    }
  });
});
