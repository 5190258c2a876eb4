import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/artifacts/integrity.js';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { bundledModels } from '../../src/paths.js';
import { RegistryCatalog } from '../../src/registry/catalog.js';
import { importDirectory } from '../../src/registry/import.js';
import { Registry } from '../../src/registry/registry.js';
import { REGISTRY_CHANNEL } from '../../src/registry/types.js';
import { describeEachDb, tempDir, type TestDb } from '../helpers/services.js';
import { writeLinear } from '../helpers/repo.js';
import { draft, payloadFor, registerModel, uniqueName } from './models.js';

const INJECTION = "x'); DROP TABLE model_versions;--";

describeEachDb('registry', (backend) => {
  let t: TestDb;
  let registry: Registry;
  let store: LocalDirectoryStore;

  beforeAll(async () => {
    t = await backend.open();
    store = new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts'));
    registry = new Registry(t.db, store);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  describe('register', () => {
    it('stores the version with its metadata, artifact and an audit row', async () => {
      const name = uniqueName('reg');
      const payload = payloadFor(7);
      const v = await registry.register({
        manifest: draft(name), payload, version: '1.2.3', actor: 'alice',
        trainingConfig: { epochs: 3 }, hyperparameters: { lr: 0.1 }, metrics: { auc: 0.91 },
        cvScores: [0.9, 0.92], tags: ['a', 'b'], notes: 'first', reason: 'initial upload',
      });
      expect(v).toMatchObject({
        model: name, version: '1.2.3', kind: 'logistic', stage: 'development', createdBy: 'alice',
        trainingConfig: { epochs: 3 }, hyperparameters: { lr: 0.1 }, metrics: { auc: 0.91 },
        cvScores: [0.9, 0.92], tags: ['a', 'b'], notes: 'first', parentVersion: null,
        artifact: { key: `sha256/${sha256Hex(payload)}`, file: 'weights.json', size: payload.byteLength, sha256: sha256Hex(payload) },
      });
      expect(v.manifest).toMatchObject({ name, version: '1.2.3', payload: { file: 'weights.json', sha256: sha256Hex(payload) } });
      expect(Buffer.from(await store.get(v.artifact.key, v.artifact.sha256))).toEqual(Buffer.from(payload));
      expect(await registry.getVersion(name, '1.2.3')).toEqual(v);
      const audit = await registry.audit({ model: name });
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ action: 'register', toVersion: '1.2.3', toStage: 'development', actor: 'alice', reason: 'initial upload', fromVersion: null });
    });

    it('accepts the payload as a stream', async () => {
      const name = uniqueName('stream');
      const payload = payloadFor(11);
      async function* chunks(): AsyncIterable<Uint8Array> {
        for (let i = 0; i < payload.length; i += 7) yield payload.subarray(i, i + 7);
      }
      const v = await registry.register({ manifest: draft(name), payload: chunks(), version: '1.0.0', actor: 'bob' });
      expect(v.artifact.sha256).toBe(sha256Hex(payload));
      const source = await registry.openVersion(name, '1.0.0');
      expect(Buffer.from(await source.readPayload())).toEqual(Buffer.from(payload));
    });

    it('refuses a duplicate version with VERSION_EXISTS, explicit or from the manifest', async () => {
      const name = uniqueName('dup');
      await registerModel(registry, name, { version: '1.0.0' });
      await expect(registerModel(registry, name, { version: '1.0.0' })).rejects.toMatchObject({ code: 'VERSION_EXISTS' });
      await expect(registry.register({ manifest: { ...draft(name), version: '1.0.0' }, payload: payloadFor(99), actor: 'x' }))
        .rejects.toMatchObject({ code: 'VERSION_EXISTS' });
      expect((await registry.versions(name)).map((v) => v.version)).toEqual(['1.0.0']);
      expect(await registry.audit({ model: name })).toHaveLength(1);
    });

    it('bumps semantic versions from the latest registered one (1.0.0 first)', async () => {
      const name = uniqueName('bump');
      expect((await registerModel(registry, name, { bump: 'patch' })).version).toBe('1.0.0');
      expect((await registerModel(registry, name, { bump: 'patch' })).version).toBe('1.0.1');
      expect((await registerModel(registry, name, { bump: 'minor' })).version).toBe('1.1.0');
      expect((await registerModel(registry, name, { bump: 'major' })).version).toBe('2.0.0');
      await registerModel(registry, name, { version: '1.9.0' }); // older than the latest: ignored
      expect((await registerModel(registry, name, { bump: 'minor' })).version).toBe('2.1.0');
      await registerModel(registry, name, { version: 'nightly-build' }); // not semver: ignored
      expect((await registerModel(registry, name, { bump: 'patch' })).version).toBe('2.1.1');
    });

    it('gives concurrent bumps distinct versions (the bump is computed under the model lock)', async () => {
      const name = uniqueName('bumprace');
      await registerModel(registry, name, { version: '1.0.0' });
      const got = await Promise.all(Array.from({ length: 8 }, () => registerModel(registry, name, { bump: 'patch' })));
      expect(got.map((v) => v.version).sort()).toEqual(['1.0.1', '1.0.2', '1.0.3', '1.0.4', '1.0.5', '1.0.6', '1.0.7', '1.0.8']);
    });

    it('refuses a payload that does not match the hash the manifest declares', async () => {
      const name = uniqueName('hash');
      const manifest = { ...draft(name), payload: { file: 'weights.json', sha256: sha256Hex(payloadFor(1)) } };
      await expect(registry.register({ manifest, payload: payloadFor(2), version: '1.0.0', actor: 'x' })).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
      await expect(registry.getVersion(name, '1.0.0')).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
      await registry.register({ manifest, payload: payloadFor(1), version: '1.0.0', actor: 'x' });
    });

    it('checks the manifest and the metadata before storing anything', async () => {
      const name = uniqueName('bad');
      await expect(registry.register({ manifest: { ...draft(name), kind: 'python' }, payload: payloadFor(1), version: '1', actor: 'x' })).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
      await expect(registry.register({ manifest: draft(name), payload: payloadFor(1), actor: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registry.register({ manifest: draft(name), payload: payloadFor(1), version: '1', bump: 'major', actor: 'x' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registerModel(registry, name, { version: '1', cvScores: [Number.NaN] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registerModel(registry, name, { version: '1', notes: 'nul \u0000 byte' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registerModel(registry, name, { version: '1', actor: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registerModel(registry, name, { version: '1', parentVersion: '0.9' })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
      await expect(registry.showModel(name)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    });

    it('records the parent version as lineage', async () => {
      const name = uniqueName('parent');
      await registerModel(registry, name, { version: '1.0.0' });
      const child = await registerModel(registry, name, { bump: 'minor', parentVersion: '1.0.0' });
      expect(child.parentVersion).toBe('1.0.0');
      const [row] = await registry.audit({ model: name, limit: 1 });
      expect(row).toMatchObject({ action: 'register', fromVersion: '1.0.0', toVersion: '1.1.0' });
    });

    it('stores the same bytes once (content-addressed)', async () => {
      const a = await registry.register({ manifest: draft(uniqueName('same')), payload: payloadFor(500), version: '1', actor: 'x' });
      const b = await registry.register({ manifest: draft(uniqueName('same')), payload: payloadFor(500), version: '1', actor: 'x' });
      expect(a.artifact.key).toBe(b.artifact.key);
    });
  });

  describe('immutability, enforced by the database', () => {
    it('refuses UPDATE of any column but the stage, and DELETE', async () => {
      const name = uniqueName('imm');
      const v = await registerModel(registry, name, { version: '1.0.0', notes: 'original' });
      for (const [column, value] of [['notes', 'changed'], ['sha256', 'f'.repeat(64)], ['created_by', 'mallory'], ['metrics', '{"auc": 1}'], ['version', '9.9.9']]) {
        await expect(t.db.query(`UPDATE model_versions SET ${column} = $3 WHERE model = $1 AND version = $2`, [name, '1.0.0', value]), column)
          .rejects.toMatchObject({ code: 'SL001' });
      }
      await expect(t.db.query('DELETE FROM model_versions WHERE model = $1', [name])).rejects.toMatchObject({ code: 'SL001' });
      // The stage is the one mutable part.
      await t.db.query("UPDATE model_versions SET stage = 'staging' WHERE model = $1 AND version = $2", [name, '1.0.0']);
      expect(await registry.getVersion(name, '1.0.0')).toMatchObject({ ...v, stage: 'staging', stageChangedAt: expect.any(Date) });
    });

    it('keeps the audit log append-only', async () => {
      const name = uniqueName('audit');
      await registerModel(registry, name, { version: '1' });
      await expect(t.db.query("UPDATE model_lineage SET actor = 'mallory' WHERE model = $1", [name])).rejects.toMatchObject({ code: 'SL001' });
      await expect(t.db.query('DELETE FROM model_lineage WHERE model = $1', [name])).rejects.toMatchObject({ code: 'SL001' });
    });

    it('allows at most one production version per model (partial unique index)', async () => {
      const name = uniqueName('uniq');
      await registerModel(registry, name, { version: '1' });
      await registerModel(registry, name, { version: '2' });
      await t.db.query("UPDATE model_versions SET stage = 'production' WHERE model = $1 AND version = '1'", [name]);
      await expect(t.db.query("UPDATE model_versions SET stage = 'production' WHERE model = $1 AND version = '2'", [name])).rejects.toMatchObject({ code: '23505' });
    });
  });

  describe('promote and rollback', () => {
    it('promotes through the stages, archiving the replaced production version, one audit row each', async () => {
      const name = uniqueName('promo');
      for (const v of ['1', '2', '3']) await registerModel(registry, name, { version: v });
      expect(await registry.promote(name, '1', 'staging', { actor: 'ops', reason: 'qa' })).toMatchObject({ stage: 'staging', fromStage: 'development', changed: true, replacedProduction: null });
      expect(await registry.promote(name, '1', 'production', { actor: 'ops' })).toMatchObject({ fromStage: 'staging', changed: true, replacedProduction: null });
      const p2 = await registry.promote(name, '2', 'production', { actor: 'ops', reason: 'better auc' });
      expect(p2).toMatchObject({ changed: true, replacedProduction: '1' });
      const show = await registry.showModel(name);
      expect(show.productionVersion).toBe('2');
      expect(show.productionHistory).toEqual(['1', '2']);
      expect(Object.fromEntries(show.versions.map((v) => [v.version, v.stage]))).toEqual({ 1: 'archived', 2: 'production', 3: 'development' });
      // Already there: nothing changes, nothing is written.
      expect(await registry.promote(name, '2', 'production', { actor: 'ops' })).toMatchObject({ changed: false, auditId: null });
      const audit = await registry.audit({ model: name, order: 'asc' });
      expect(audit.map((a) => [a.action, a.fromVersion, a.toVersion, a.fromStage, a.toStage, a.actor])).toEqual([
        ['register', null, '1', null, 'development', 'test-admin'],
        ['register', null, '2', null, 'development', 'test-admin'],
        ['register', null, '3', null, 'development', 'test-admin'],
        ['promote', null, '1', 'development', 'staging', 'ops'],
        ['promote', null, '1', 'staging', 'production', 'ops'],
        ['promote', '1', '2', 'development', 'production', 'ops'],
      ]);
      expect(audit[5]!.id).toBe(p2.auditId);
      expect(audit[5]!.reason).toBe('better auc');
    });

    it('refuses to empty production by moving the production version elsewhere', async () => {
      const name = uniqueName('keep');
      await registerModel(registry, name, { version: '1' });
      await registry.promote(name, '1', 'production', { actor: 'ops' });
      await expect(registry.promote(name, '1', 'archived', { actor: 'ops' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((await registry.showModel(name)).productionVersion).toBe('1');
    });

    it('rolls back step by step through earlier production versions, then refuses', async () => {
      const name = uniqueName('rb');
      for (const v of ['1', '2', '3']) {
        await registerModel(registry, name, { version: v });
        await registry.promote(name, v, 'production', { actor: 'ops' });
      }
      await expect(registry.rollback(name, { actor: 'ops', reason: 'bad p99' })).resolves.toMatchObject({ version: '2', replacedProduction: '3', fromStage: 'archived', changed: true });
      await expect(registry.rollback(name, { actor: 'ops' })).resolves.toMatchObject({ version: '1', replacedProduction: '2' });
      await expect(registry.rollback(name, { actor: 'ops' })).rejects.toMatchObject({ code: 'ROLLBACK_IMPOSSIBLE' });
      const show = await registry.showModel(name);
      expect(show.productionVersion).toBe('1');
      expect(show.versions.map((v) => v.stage)).toEqual(['production', 'archived', 'archived']);
      const rows = await registry.audit({ model: name, action: 'rollback', order: 'asc' });
      expect(rows.map((r) => [r.fromVersion, r.toVersion, r.reason])).toEqual([['3', '2', 'bad p99'], ['2', '1', '']]);
    });

    it('rolls back to a named earlier production version, and refuses versions never in production', async () => {
      const name = uniqueName('rbto');
      for (const v of ['1', '2', '3', '4']) await registerModel(registry, name, { version: v });
      for (const v of ['1', '2', '3']) await registry.promote(name, v, 'production', { actor: 'ops' });
      await expect(registry.rollback(name, { actor: 'ops', to: '4' })).rejects.toMatchObject({ code: 'ROLLBACK_IMPOSSIBLE' });
      await expect(registry.rollback(name, { actor: 'ops', to: '7' })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
      expect(await registry.rollback(name, { actor: 'ops', to: '3' })).toMatchObject({ changed: false });
      await expect(registry.rollback(name, { actor: 'ops', to: '1' })).resolves.toMatchObject({ version: '1', replacedProduction: '3' });
      expect((await registry.showModel(name)).productionHistory).toEqual(['1']);
      await expect(registry.rollback(name, { actor: 'ops' })).rejects.toMatchObject({ code: 'ROLLBACK_IMPOSSIBLE' });
    });

    it('cannot roll back a model without a production version, or an unknown model', async () => {
      const name = uniqueName('noprod');
      await registerModel(registry, name, { version: '1' });
      await expect(registry.rollback(name, { actor: 'ops' })).rejects.toMatchObject({ code: 'ROLLBACK_IMPOSSIBLE' });
      await expect(registry.rollback(uniqueName('ghost'), { actor: 'ops' })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
      await expect(registry.promote(name, '9', 'staging', { actor: 'ops' })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
      await expect(registry.promote(name, '1', 'live' as never, { actor: 'ops' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });

    it('NOTIFYs sluice_registry with {model, version} after each production change, only on commit', async () => {
      const name = uniqueName('notify');
      await registerModel(registry, name, { version: '1' });
      await registerModel(registry, name, { version: '2' });
      const got: unknown[] = [];
      const unlisten = await t.db.listen(REGISTRY_CHANNEL, { onNotify: (p) => got.push(JSON.parse(p)) });
      try {
        await registry.promote(name, '1', 'staging', { actor: 'ops' }); // not production: no notification
        await registry.promote(name, '1', 'production', { actor: 'ops' });
        await registry.promote(name, '2', 'production', { actor: 'ops' });
        await registry.rollback(name, { actor: 'ops' });
        await expect(registry.promote(name, '2', 'staging', { actor: 'ops' })).resolves.toMatchObject({ changed: true }); // archived -> staging: no notification
        const mine = async () => got.filter((g) => (g as { model: string }).model === name);
        await expect.poll(mine, { timeout: 2000 }).toEqual([{ model: name, version: '1' }, { model: name, version: '2' }, { model: name, version: '1' }]);
      } finally {
        await unlisten();
      }
    });

    it('lists models and their versions by stage', async () => {
      const name = uniqueName('list');
      await registerModel(registry, name, { version: '1' });
      await registerModel(registry, name, { version: '2' });
      await registry.promote(name, '2', 'production', { actor: 'ops' });
      const summary = (await registry.listModels()).find((m) => m.name === name);
      expect(summary).toMatchObject({ versionCount: 2, latestVersion: '2', productionVersion: '2', stages: { development: 1, staging: 0, production: 1, archived: 0 } });
      expect((await registry.versions(name, { stage: 'production' })).map((v) => v.version)).toEqual(['2']);
      expect((await registry.productionVersions()).get(name)).toBe('2');
      await expect(registry.versions(uniqueName('ghost'))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    });
  });

  describe('serving from the registry', () => {
    it('opens the production version as a VersionSource whose payload is verified', async () => {
      const name = uniqueName('src');
      const payload = payloadFor(3);
      await registry.register({ manifest: draft(name), payload, version: '1', actor: 'x' });
      await expect(registry.openVersion(name)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
      await registry.promote(name, '1', 'production', { actor: 'ops' });
      const source = await registry.openVersion(name);
      expect(source.manifest).toMatchObject({ name, version: '1', kind: 'logistic', payload: { sha256: sha256Hex(payload) } });
      expect(Buffer.from(await source.readPayload())).toEqual(Buffer.from(payload));
    });

    it('never returns a corrupted artifact (ARTIFACT_INTEGRITY)', async () => {
      const name = uniqueName('corrupt');
      const v = await registry.register({ manifest: draft(name), payload: Buffer.from('{"weights":[[0.1,0.2,0.3,0.4]],"bias":[0.77]}'), version: '1', actor: 'x' });
      await writeFile(store.pathOf(v.artifact.key), '{"weights":[[9,9,9,9]],"bias":[0.77]}');
      const source = await registry.openVersion(name, '1');
      await expect(source.readPayload()).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
    });
  });

  describe('performance snapshots', () => {
    it('records and reads snapshots, newest first', async () => {
      const name = uniqueName('perf');
      await registerModel(registry, name, { version: '1' });
      await registry.recordPerformance(name, '1', { predictionCount: 10, p50Ms: 1, p95Ms: 2, p99Ms: 3, errorRate: 0.1, at: new Date(Date.now() - 60_000) });
      const s = await registry.recordPerformance(name, '1', { predictionCount: 1000, p50Ms: 0.5, p95Ms: 1.5, p99Ms: 2.5, errorRate: 0, cpuPercent: 55, memoryBytes: 123456789, extra: { queue: 3 } });
      expect(s).toMatchObject({ model: name, version: '1', predictionCount: 1000, p99Ms: 2.5, errorRate: 0, cpuPercent: 55, memoryBytes: 123456789, extra: { queue: 3 } });
      const list = await registry.performance(name);
      expect(list.map((p) => p.predictionCount)).toEqual([1000, 10]);
      await expect(registry.recordPerformance(name, '1', { predictionCount: 1, errorRate: 2 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registry.recordPerformance(name, '1', { predictionCount: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      await expect(registry.recordPerformance(name, '2', { predictionCount: 1 })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
    });
  });

  describe('SQL injection', () => {
    it('stores injection strings verbatim in tags, notes, reasons and actors, harmlessly', async () => {
      const name = uniqueName('inj');
      const nasty = [INJECTION, "'; DELETE FROM models; --", '$1', "\\'; SELECT pg_sleep(10); --", 'Robert"); DROP TABLE api_keys;--'];
      const v = await registerModel(registry, name, { version: '1', tags: nasty, notes: nasty.join('\n'), actor: INJECTION, reason: INJECTION, metrics: { [INJECTION]: 1 } });
      expect(v.tags).toEqual(nasty);
      const back = await registry.getVersion(name, '1');
      expect(back).toMatchObject({ tags: nasty, notes: nasty.join('\n'), createdBy: INJECTION, metrics: { [INJECTION]: 1 } });
      await registry.promote(name, '1', 'production', { actor: INJECTION, reason: INJECTION });
      const audit = await registry.audit({ model: name, order: 'asc' });
      expect(audit.map((a) => [a.actor, a.reason])).toEqual([[INJECTION, INJECTION], [INJECTION, INJECTION]]);
      expect((await t.db.query('SELECT count(*)::int AS n FROM model_versions')).at(0)?.n).toBeGreaterThan(0);
    });

    it('refuses injection strings as model names and versions when registering (names are validated)', async () => {
      await expect(registry.register({ manifest: draft(INJECTION), payload: payloadFor(1), version: '1', actor: 'x' })).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
      await expect(registerModel(registry, uniqueName('v'), { version: INJECTION })).rejects.toMatchObject({ code: 'NAME_INVALID' });
      await expect(registry.register({ manifest: { ...draft(uniqueName('v')), version: INJECTION }, payload: payloadFor(1), actor: 'x' })).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
    });

    it('refuses lookups by injection strings with NAME_INVALID before any SQL (the naming rule; queries are parameterised anyway)', async () => {
      const name = uniqueName('lk');
      await registerModel(registry, name, { version: '1' });
      await expect(registry.showModel(INJECTION)).rejects.toMatchObject({ code: 'NAME_INVALID' });
      await expect(registry.getVersion(name, INJECTION)).rejects.toMatchObject({ code: 'NAME_INVALID' });
      await expect(registry.promote(INJECTION, '1', 'production', { actor: 'x' })).rejects.toMatchObject({ code: 'NAME_INVALID' });
      await expect(registry.rollback(name, { actor: 'x', to: INJECTION })).rejects.toMatchObject({ code: 'NAME_INVALID' });
      await expect(registry.audit({ model: INJECTION })).rejects.toMatchObject({ code: 'NAME_INVALID' });
      await expect(registry.performance(INJECTION)).rejects.toMatchObject({ code: 'NAME_INVALID' });
      // A well-formed unknown name is still a plain not-found.
      await expect(registry.showModel('no-such-model')).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
      await expect(registry.getVersion(name, '9.9.9')).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
      // Every table is still there and intact.
      for (const table of ['models', 'model_versions', 'model_lineage', 'model_performance', 'api_keys']) {
        await expect(t.db.query(`SELECT count(*) FROM ${table}`)).resolves.toHaveLength(1);
      }
      expect((await registry.versions(name)).map((v) => v.version)).toEqual(['1']);
    });
  });

  describe('importing a model repository directory', () => {
    it('imports the bundled repository with its versions, and a re-import is harmless', async () => {
      const first = await importDirectory(registry, bundledModels, { actor: 'importer' });
      const names = first.map((r) => r.model);
      expect(names).toEqual(expect.arrayContaining(['demo-logistic', 'demo-onnx']));
      const second = await importDirectory(registry, bundledModels, { actor: 'importer' });
      expect(second.every((r) => r.status === 'exists')).toBe(true);
      const v = await registry.getVersion('demo-logistic', '1');
      expect(v).toMatchObject({ kind: 'logistic', createdBy: 'importer' });
      const source = await registry.openVersion('demo-logistic', '1');
      const payload = await source.readPayload();
      expect(sha256Hex(payload)).toBe(v.artifact.sha256);
    });

    it('imports a single model directory or version directory, and refuses a changed payload', async () => {
      const tmp = await tempDir('sluice-import-');
      try {
        const name = uniqueName('imp');
        await writeLinear(tmp.dir, name, '1', { features: 4 });
        await writeLinear(tmp.dir, name, '2', { features: 4, scale: 2 });
        expect(await importDirectory(registry, path.join(tmp.dir, name, '2'), { actor: 'i' })).toEqual([{ model: name, version: '2', status: 'registered' }]);
        expect(await importDirectory(registry, path.join(tmp.dir, name), { actor: 'i' })).toEqual([
          { model: name, version: '1', status: 'registered' }, { model: name, version: '2', status: 'exists' },
        ]);
        // A registered version is recognised by its manifest's hash: its payload is not read again.
        await writeFile(path.join(tmp.dir, name, '1', 'weights.json'), 'not read');
        expect(await importDirectory(registry, path.join(tmp.dir, name, '1'), { actor: 'i' })).toEqual([{ model: name, version: '1', status: 'exists' }]);
        // The catalog's repository index: every model with its versions in registration order.
        expect((await new RegistryCatalog(registry).index()).find((e) => e.name === name)).toEqual({ name, versions: ['2', '1'] });
        // Same version string, different bytes: versions are immutable.
        await writeLinear(tmp.dir, name, '2', { features: 4, scale: 3 });
        await expect(importDirectory(registry, path.join(tmp.dir, name, '2'), { actor: 'i' })).rejects.toMatchObject({ code: 'VERSION_EXISTS' });
        // Bumps continue from imported plain-number versions.
        expect((await registerModel(registry, name, { bump: 'minor' })).version).toBe('2.1.0');
        await mkdir(path.join(tmp.dir, 'empty'));
        await expect(importDirectory(registry, path.join(tmp.dir, 'empty'), { actor: 'i' })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
      } finally {
        await tmp.cleanup();
      }
    });
  });
});
