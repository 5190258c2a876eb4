/**
 * Everything the registry side needs, built from a Config in one call:
 *
 *   const services = await openRegistry(config);
 *   if (services.initialAdminKey) print(services.initialAdminKey.secret);   // once, first start
 *   services.watcher.onChange((model, version) => engine.loadVersion(...));
 *   await services.watcher.start();
 *   ...
 *   await services.close();
 *
 * Database: PostgreSQL when config.databaseUrl is set, else embedded PGlite in
 * `<dataDir>/registry`, run in a thread of its own (pglite-thread.ts); migrations are applied on open. Artifacts: S3 with a local cache when
 * config.s3Bucket is set, else `<dataDir>/artifacts`.
 */
import path from 'node:path';
import { openArtifactStore, removeStaleArtifactTemp, type S3Tuning } from '../artifacts/open.js';
import type { ArtifactStore } from '../artifacts/store.js';
import { ApiKeys, type ApiKeysOptions, type CreatedKey } from '../auth/keys.js';
import type { Config } from '../config/index.js';
import { errorFields, log } from '../log.js';
import type { Db } from './db.js';
import { migrate } from './migrate.js';
import type { PgOptions } from './pg-db.js';
import { Registry } from './registry.js';
import { RegistryWatcher } from './watcher.js';

export type RegistryConfig = Pick<Config,
  'dataDir' | 'databaseUrl' | 's3Bucket' | 's3Prefix' | 's3Endpoint' | 's3Region' | 's3AccessKeyId' |
  's3SecretAccessKey' | 's3ForcePathStyle' | 'adminKey' | 'reconcileMs'> & Partial<Pick<Config, 'embeddedDbNice'>>;

export interface OpenOptions {
  pg?: Partial<PgOptions>;
  s3?: S3Tuning;
  keys?: ApiKeysOptions;
  /** Create (or install config.adminKey as) the admin key when none exists. Default true. */
  bootstrapAdmin?: boolean;
}

export interface RegistryServices {
  db: Db;
  registry: Registry;
  artifacts: ArtifactStore;
  keys: ApiKeys;
  /** Not started: add listeners with onChange, then start(). */
  watcher: RegistryWatcher;
  /** The admin key created by this start (print its secret once), if one was created. */
  initialAdminKey: CreatedKey | undefined;
  close(): Promise<void>;
}

/**
 * Opens the configured database and brings its schema up to date. Each driver is imported only
 * when configured: `pg` costs ~14 MB resident in a server on PGlite, PGlite far more in one on
 * PostgreSQL.
 */
export async function openDb(config: Pick<Config, 'dataDir' | 'databaseUrl'> & Partial<Pick<Config, 'embeddedDbNice'>>, pg: Partial<PgOptions> = {}): Promise<Db> {
  const db: Db = config.databaseUrl !== undefined
    ? new (await import('./pg-db.js')).PgDb(config.databaseUrl, pg)
    : await (await import('./pglite-thread.js')).PgliteThreadDb.open(path.join(config.dataDir, 'registry'), { nice: config.embeddedDbNice });
  try {
    await migrate(db);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return db;
}

export async function openRegistry(config: RegistryConfig, opts: OpenOptions = {}): Promise<RegistryServices> {
  const db = await openDb(config, opts.pg);
  // A failed cleanup costs only disk space: never a reason not to start.
  await removeStaleArtifactTemp(config).catch((e: unknown) => log.warn('artifacts: cannot remove partial files', errorFields(e)));
  let artifacts: ArtifactStore;
  try {
    artifacts = await openArtifactStore(config, opts.s3);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  const keys = new ApiKeys(db, opts.keys);
  const watcher = new RegistryWatcher(db, { reconcileMs: config.reconcileMs });
  const close = async (): Promise<void> => {
    await watcher.stop();
    await keys.stop();
    await artifacts.close();
    await db.close();
  };
  try {
    const initialAdminKey = opts.bootstrapAdmin === false ? undefined : await keys.bootstrap(config.adminKey);
    await keys.start();
    return { db, registry: new Registry(db, artifacts), artifacts, keys, watcher, initialAdminKey, close };
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
}
