/**
 * The default artifact store: a directory (under the data directory), one file per content at
 * `<root>/sha256/<hex>`. Writes go to a temporary file first, are flushed, then renamed into
 * place, so a crash never leaves a half-written artifact under its final name. Also used as the
 * local cache in front of S3 (cached.ts).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { SluiceError } from '../errors.js';
import { collectHashed, StreamingSha256, type Hashed } from './integrity.js';
import { artifactKey, checkExpected, chunksOf, hashOfKey, type ArtifactData, type ArtifactInfo, type ArtifactStore, type PutOptions } from './store.js';

const TEMP_PREFIX = '.tmp-';
/** `.tmp-<pid>-<16 hex>`: the only names writeTemp makes, so the only ones cleanup removes. */
const TEMP_NAME = /^\.tmp-(\d+)-[0-9a-f]{16}$/;
/** A temporary file untouched this long is abandoned whoever made it (writes keep its mtime fresh). */
const ABANDONED_MS = 24 * 3600_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

/**
 * Removes the temporary files a killed process left in `dir` (a SIGKILL mid-upload leaves its
 * partial file: five kills during 200 MB uploads had left 610 MB). Only names writeTemp makes
 * are touched, never artifacts, and only when their writer is gone: its pid is not running, or
 * is this process's own pid but the file predates this process (containers reuse pid 1), or the
 * file has not been written for a day. Another live process's upload in a shared directory is
 * left alone. Returns what was removed.
 */
export async function removeStaleTempFiles(dir: string): Promise<{ files: number; bytes: number }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { files: 0, bytes: 0 };
    throw e;
  }
  const startedAt = Date.now() - performance.now();
  let files = 0;
  let bytes = 0;
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) continue;
    const pid = Number(m[1]);
    const stale = pid === process.pid ? st.mtimeMs < startedAt : !processAlive(pid) || Date.now() - st.mtimeMs > ABANDONED_MS;
    if (!stale) continue;
    await rm(file, { force: true });
    files++;
    bytes += st.size;
  }
  return { files, bytes };
}

/** Writes `data` to a new, flushed temporary file in `dir`, showing each chunk written to `onChunk`. */
async function writeTemp(data: ArtifactData, dir: string, onChunk?: (chunk: Uint8Array) => void): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
  const fh = await open(file, 'wx', 0o644);
  try {
    for await (const chunk of chunksOf(data)) {
      await fh.write(chunk);
      onChunk?.(chunk);
    }
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(file, { force: true });
    throw e;
  }
  await fh.close();
  return file;
}

/** Streams `data` into a new temporary file in `dir` while hashing it. */
export async function stageToFile(data: ArtifactData, dir: string, opts: PutOptions = {}): Promise<{ file: string; sha256: string; size: number }> {
  const hash = new StreamingSha256();
  const file = await writeTemp(data, dir, (chunk) => {
    hash.update(chunk);
    opts.onProgress?.(hash.size);
  });
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
    const staged = await stageToFile(data, this.tmpDir, opts);
    const key = artifactKey(staged.sha256);
    await this.place(staged.file, key);
    return { key, sha256: staged.sha256, size: staged.size };
  }

  /**
   * Stores bytes the caller has just verified to hash to `key` (the cache in front of S3, after
   * a verified download or upload) without hashing them a second time.
   */
  async putVerified(key: string, bytes: Uint8Array): Promise<void> {
    this.pathOf(key); // checks the key before anything is written
    await this.place(await writeTemp(bytes, this.tmpDir), key);
  }

  /** Where this store stages writes (removeStaleTempFiles cleans it at start). */
  get tmpDir(): string {
    return path.join(this.root, 'tmp');
  }

  /** Renames a staged file to the key's name (same content, same name: a replace changes nothing). */
  private async place(staged: string, key: string): Promise<void> {
    const final = this.pathOf(key);
    try {
      await mkdir(path.dirname(final), { recursive: true });
      await rename(staged, final); // atomic
    } catch (e) {
      await rm(staged, { force: true });
      throw new SluiceError('ARTIFACT_UNAVAILABLE', 'the local artifact store cannot be written', { cause: e });
    }
  }

  async get(key: string, expectedSha256: string): Promise<Uint8Array> {
    checkExpected(expectedSha256);
    const file = this.pathOf(key);
    let read: Hashed;
    try {
      read = await collectHashed(createReadStream(file));
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new SluiceError('ARTIFACT_UNAVAILABLE', missing ? `artifact ${key} is not in the store` : `artifact ${key} cannot be read`, { cause: e });
    }
    read.hash.verify(expectedSha256, `artifact ${key}`);
    return read.bytes;
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
