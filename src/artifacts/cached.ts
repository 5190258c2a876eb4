/**
 * A local cache (a directory store under the data directory) in front of a remote store (S3).
 * Reads try the cache first: a verified cached copy is served without asking the remote, which
 * is what keeps models loadable while S3 is unreachable. A miss is downloaded (verified while it
 * streams) and then cached; a cached copy that fails verification is deleted and fetched again.
 */
import { SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { LocalDirectoryStore } from './local.js';
import { hashOfKey, type ArtifactData, type ArtifactInfo, type ArtifactStore, type PutOptions } from './store.js';

export class CachedStore implements ArtifactStore {
  readonly kind = 'cached-s3' as const;

  constructor(readonly remote: ArtifactStore, readonly cache: LocalDirectoryStore) {}

  async put(data: ArtifactData, opts: PutOptions = {}): Promise<ArtifactInfo> {
    const info = await this.remote.put(data, opts);
    // Bytes in hand cost nothing to cache; a stream was consumed by the upload.
    if (data instanceof Uint8Array) await this.fill(info.key, data);
    return info;
  }

  async get(key: string, expectedSha256: string): Promise<Uint8Array> {
    hashOfKey(key);
    if (await this.cache.exists(key)) {
      try {
        return await this.cache.get(key, expectedSha256);
      } catch (e) {
        if (e instanceof SluiceError && e.code === 'ARTIFACT_INTEGRITY') {
          log.warn('artifacts: cached copy failed verification; dropped, fetching again', { key });
          await this.cache.remove(key);
        } else {
          log.warn('artifacts: cached copy unreadable; fetching again', { key, ...errorFields(e) });
        }
      }
    }
    const bytes = await this.remote.get(key, expectedSha256);
    // Verified against expectedSha256; cached under `key` only if that is the hash the key
    // names (an object whose bytes differ from its content address is served, never cached).
    if (hashOfKey(key) === expectedSha256) await this.fill(key, bytes);
    return bytes;
  }

  /**
   * Caches bytes already known to hash to `key` (the remote verified or computed it), so they
   * are not hashed again. Best effort: a full disk must not fail a load that succeeded.
   */
  private async fill(key: string, bytes: Uint8Array): Promise<void> {
    try {
      await this.cache.putVerified(key, bytes);
    } catch (e) {
      log.warn('artifacts: could not cache an artifact', { key, ...errorFields(e) });
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.cache.exists(key)) || this.remote.exists(key);
  }

  /** Deletes the remote object, then the cached copy (a cache never keeps what the remote lost). */
  async remove(key: string): Promise<void> {
    await this.remote.remove(key);
    await this.cache.remove(key);
  }

  async close(): Promise<void> {
    await this.remote.close();
  }
}
