/**
 * The artifact store a configuration asks for: S3 with a local cache when SLUICE_S3_BUCKET is
 * set, else a local directory under the data directory.
 */
import path from 'node:path';
import type { Config } from '../config/index.js';
import { CachedStore } from './cached.js';
import { log } from '../log.js';
import { LocalDirectoryStore, removeStaleTempFiles } from './local.js';
import type { S3StoreOptions } from './s3.js';
import type { ArtifactStore } from './store.js';

type ArtifactConfig = Pick<Config, 'dataDir' | 's3Bucket' | 's3Prefix' | 's3Endpoint' | 's3Region' | 's3AccessKeyId' | 's3SecretAccessKey' | 's3ForcePathStyle'>;

/** Tuning the Config does not carry (tests use a small part size to force multipart). */
export type S3Tuning = Partial<Pick<S3StoreOptions, 'partSize' | 'queueSize' | 'connectTimeoutMs' | 'responseTimeoutMs' | 'idleTimeoutMs' | 'uploadTimeoutMs' | 'maxAttempts'>>;

export function s3OptionsFromConfig(config: ArtifactConfig, tuning: S3Tuning = {}): S3StoreOptions {
  if (config.s3Bucket === undefined) throw new Error('s3OptionsFromConfig: no bucket configured');
  return {
    bucket: config.s3Bucket,
    prefix: config.s3Prefix,
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    accessKeyId: config.s3AccessKeyId,
    secretAccessKey: config.s3SecretAccessKey,
    forcePathStyle: config.s3ForcePathStyle ?? config.s3Endpoint !== undefined,
    stagingDir: path.join(config.dataDir, 'tmp'),
    ...tuning,
  };
}

/**
 * The S3 store (and with it the AWS SDK, ~20 MB resident once loaded) is imported only when a
 * bucket is configured.
 */
export async function openArtifactStore(config: ArtifactConfig, tuning: S3Tuning = {}): Promise<ArtifactStore> {
  if (config.s3Bucket === undefined) return new LocalDirectoryStore(path.join(config.dataDir, 'artifacts'));
  const { S3Store } = await import('./s3.js');
  return new CachedStore(new S3Store(s3OptionsFromConfig(config, tuning)), new LocalDirectoryStore(path.join(config.dataDir, 'artifact-cache')));
}

/**
 * Removes the partial files of uploads a killed process left behind, in every directory where
 * this configuration's stores stage writes (the local store's, the S3 cache's, S3 staging).
 * Called at start, before anything is written; logs what it removed.
 */
export async function removeStaleArtifactTemp(config: ArtifactConfig): Promise<{ files: number; bytes: number }> {
  const dirs = [
    new LocalDirectoryStore(path.join(config.dataDir, 'artifacts')).tmpDir,
    new LocalDirectoryStore(path.join(config.dataDir, 'artifact-cache')).tmpDir,
    path.join(config.dataDir, 'tmp'),
  ];
  const total = { files: 0, bytes: 0 };
  for (const dir of dirs) {
    const r = await removeStaleTempFiles(dir);
    total.files += r.files;
    total.bytes += r.bytes;
  }
  if (total.files > 0) log.info('artifacts: removed partial files left by an earlier process', total);
  return total;
}
