/**
 * Everything built from a Config by openRegistry(): the embedded default (PGlite and artifacts
 * under the data directory, persisted across restarts), PostgreSQL + S3 when configured, and a
 * registry version served by the real engine through the watcher.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CachedStore } from '../../src/artifacts/cached.js';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import type { Config } from '../../src/config/index.js';
import { PgDb } from '../../src/registry/pg-db.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';
import { openRegistry, type RegistryServices } from '../../src/registry/open.js';
import { versionSource } from '../../src/registry/registry.js';
import { Engine } from '../../src/service/engine.js';
import {
  createPgDatabase, createTestBucket, describeWith, eventually, postgresService, s3Service, tempDir, testConfig, type TestBucket,
} from '../helpers/services.js';
import { FEATURES, draft, payloadFor } from './models.js';

describe('openRegistry with the embedded defaults', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let services: RegistryServices | undefined;
  let engine: Engine | undefined;

  beforeAll(async () => {
    tmp = await tempDir('sluice-open-');
  });
  afterAll(async () => {
    await engine?.close();
    await services?.close();
    await tmp.cleanup();
  });

  it('keeps everything under the data directory, across restarts', async () => {
    const config = testConfig({ dataDir: tmp.dir });
    services = await openRegistry(config);
    expect(services.db).toBeInstanceOf(PgliteThreadDb);
    expect(services.artifacts).toBeInstanceOf(LocalDirectoryStore);
    const admin = services.initialAdminKey!;
    expect(admin.secret).toMatch(/^sk_/);
    await services.registry.register({ manifest: draft('persisted'), payload: payloadFor(1), version: '1.0.0', actor: admin.name });
    await services.registry.promote('persisted', '1.0.0', 'production', { actor: admin.name });
    await services.close();

    services = await openRegistry(config);
    expect(services.initialAdminKey).toBeUndefined(); // printed once, on the first start only
    expect(await services.keys.verify(admin.secret)).toEqual({ name: 'admin', scopes: ['admin'] });
    expect((await services.registry.showModel('persisted')).productionVersion).toBe('1.0.0');
    const [entry] = await services.registry.audit({ model: 'persisted', limit: 1 });
    expect(entry).toMatchObject({ action: 'promote', actor: 'admin' });
  });

  it('drives the engine: the watcher hands production versions to engine.loadVersion', async () => {
    const s = services!;
    engine = await Engine.start({ workers: 0, startupModels: 'none', modelRepository: tmp.dir });
    const e = engine;
    const loaded: string[] = [];
    s.watcher.onChange(async (model, version) => {
      await e.loadVersion(versionSource(await s.registry.getVersion(model, version), s.artifacts));
      loaded.push(`${model}@${version}`);
    });
    await s.watcher.start();
    await eventually(() => loaded.includes('persisted@1.0.0') || undefined, 5000, 'the production version to load');

    const infer = async () => (await e.infer({ model: 'persisted', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, FEATURES], data: new Float32Array(FEATURES).fill(1) }] })).version;
    expect(await infer()).toBe('1.0.0');
    await s.registry.register({ manifest: draft('persisted'), payload: payloadFor(2), bump: 'minor', actor: 'admin' });
    await s.registry.promote('persisted', '1.1.0', 'production', { actor: 'admin' });
    await eventually(async () => ((await infer()) === '1.1.0' ? true : undefined), 5000, 'the engine to serve the promoted version');
    await s.registry.rollback('persisted', { actor: 'admin' });
    await eventually(async () => ((await infer()) === '1.0.0' ? true : undefined), 5000, 'the engine to serve the rolled-back version');
  });
});

describeWith(postgresService, 'openRegistry with PostgreSQL', () => {
  it('uses the configured database, and installs SLUICE_ADMIN_KEY', async () => {
    const tmp = await tempDir('sluice-open-pg-');
    const database = await createPgDatabase();
    const adminKey = `configured-admin-key-${'k'.repeat(40)}`;
    const services = await openRegistry(testConfig({ dataDir: tmp.dir, databaseUrl: database.url, adminKey }));
    try {
      expect(services.db).toBeInstanceOf(PgDb);
      expect(services.initialAdminKey).toBeUndefined();
      expect(await services.keys.verify(adminKey)).toEqual({ name: 'admin', scopes: ['admin'] });
    } finally {
      await services.close();
      await database.drop();
      await tmp.cleanup();
    }
  });
});

describeWith(s3Service, 'openRegistry with S3', () => {
  let b: TestBucket;
  beforeAll(async () => {
    b = await createTestBucket();
  });
  afterAll(async () => {
    await b?.cleanup();
  });

  it('stores artifacts in the bucket behind a local cache', async () => {
    const tmp = await tempDir('sluice-open-s3-');
    const config: Partial<Config> = {
      dataDir: tmp.dir, s3Bucket: b.bucket, s3Endpoint: b.endpoint, s3Region: b.region,
      s3AccessKeyId: b.accessKeyId, s3SecretAccessKey: b.secretAccessKey,
    };
    const services = await openRegistry(testConfig(config));
    try {
      expect(services.artifacts).toBeInstanceOf(CachedStore);
      const v = await services.registry.register({ manifest: draft('in-s3'), payload: payloadFor(3), version: '1', actor: 'x' });
      expect(await (services.artifacts as CachedStore).remote.exists(v.artifact.key)).toBe(true);
      const source = await services.registry.openVersion('in-s3', '1');
      expect(Buffer.from(await source.readPayload())).toEqual(Buffer.from(payloadFor(3)));
    } finally {
      await services.close();
      await tmp.cleanup();
    }
  });
});
