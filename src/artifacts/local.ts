/**
 * The default artifact store: a directory (under the data directory), one file per content at
 * `<root>/sha256/<hex>`. Writes go to a temporary file first, are flushed, then renamed into
 * place, so a crash never leaves a half-written artifact under its final name. Also used as the
 * local cache in front of S3 (cached.ts).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { SluiceError } from '../errors.js';
import { StreamingSha256 } from './integrity.js';
import { artifactKey, checkExpected, chunksOf, hashOfKey, type ArtifactData, type ArtifactInfo, type ArtifactStore, type PutOptions } from './store.js';

/** Streams `data` into a new temporary file in `dir` while hashing it. */
export async function stageToFile(data: ArtifactData, dir: string, opts: PutOptions = {}): Promise<{ file: string; sha256: string; size: number }> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `.tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
  const hash = new StreamingSha256();
  const fh = await open(file, 'wx', 0o644);
  try {
    for await (const chunk of chunksOf(data)) {
      hash.update(chunk);
      await fh.write(chunk);
      opts.onProgress?.(hash.size);
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(file, { force: true });
    throw e;
  }
  await fh.close();
  if (opts.expectedSha256 !== undefined) {
    try {
      hash.verify(opts.expectedSha256, 'uploaded artifact');
    } catch (e) {
      await rm(file, { force: true });
      throw e;
    }
  }
  return { file, sha256: hash.hex(), size: hash.size };
}

export class LocalDirectoryStore implements ArtifactStore {
  readonly kind = 'local' as const;

  constructor(readonly root: string) {}

  /** The file of a key (the key is checked first: it becomes a path). */
  pathOf(key: string): string {
    return path.join(this.root, 'sha256', hashOfKey(key));
  }

  async put(data: ArtifactData, opts: PutOptions = {}): Promise<ArtifactInfo> {
    if (opts.expectedSha256 !== undefined) checkExpected(opts.expectedSha256);
    const staged = await stageToFile(data, path.join(this.root, 'tmp'), opts);
    const key = artifactKey(staged.sha256);
    const final = this.pathOf(key);
    try {
      await mkdir(path.dirname(final), { recursive: true });
      // Same content, same name: replacing an existing copy changes nothing (rename is atomic).
      await rename(staged.file, final);
    } catch (e) {
      await rm(staged.file, { force: true });
      throw new SluiceError('ARTIFACT_UNAVAILABLE', 'the local artifact store cannot be written', { cause: e });
    }
    return { key, sha256: staged.sha256, size: staged.size };
  }

  async get(key: string, expectedSha256: string): Promise<Uint8Array> {
    checkExpected(expectedSha256);
    const file = this.pathOf(key);
    const hash = new StreamingSha256();
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of createReadStream(file)) {
        hash.update(chunk as Buffer);
        chunks.push(chunk as Buffer);
      }
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new SluiceError('ARTIFACT_UNAVAILABLE', missing ? `artifact ${key} is not in the store` : `artifact ${key} cannot be read`, { cause: e });
    }
    hash.verify(expectedSha256, `artifact ${key}`);
    return Buffer.concat(chunks, hash.size);
  }

  async exists(key: string): Promise<boolean> {
    try {
      return (await stat(this.pathOf(key))).isFile();
    } catch {
      return false;
    }
  }

  /** Removes a copy (a corrupted cache entry). */
  async remove(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async close(): Promise<void> {}
}
