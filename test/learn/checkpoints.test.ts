/**
 * Checkpoints of learned state on real backends: PGlite with the local artifact store always,
 * PostgreSQL with S3 when the services run (scripts/ci/services.sh). Saving and restoring,
 * falling back past a missing or corrupt artifact, retention, and refusing bad input.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/artifacts/integrity.js';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { S3Store } from '../../src/artifacts/s3.js';
import type { ArtifactStore } from '../../src/artifacts/store.js';
import { CheckpointStore, type CheckpointMeta } from '../../src/learn/checkpoints.js';
import type { Db } from '../../src/registry/db.js';
import { migrate } from '../../src/registry/migrate.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';
import { createTestBucket, describeWith, postgresBackend, postgresService, s3Service, tempDir, type Service } from '../helpers/services.js';

interface Backend {
  db: Db;
  artifacts: ArtifactStore;
  /** Replaces an artifact's bytes behind the store's back. */
  corrupt(key: string): Promise<void>;
  /** Deletes an artifact behind the store's back. */
  lose(key: string): Promise<void>;
  /** Whether an artifact is still stored (after pruning). */
  stored(key: string): Promise<boolean>;
  cleanup(): Promise<void>;
}

/** A state that looks like a bandit's: sums of products, some integer counts, some zeros. */
function state(n: number, seed = 1): Float64Array {
  const s = new Float64Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 16807) % 2147483647;
    s[i] = i % 3 === 0 ? Math.floor(x / 1e7) : i % 3 === 1 ? x / 2147483647 : 0;
  }
  return s;
}

function meta(over: Partial<CheckpointMeta> = {}): CheckpointMeta {
  return { model: 'bandit', version: '1', state: 10, events: 250, replica: 'r1', watermarks: { r1: 3, r2: 7 }, ...over };
}

const f64 = (bytes: Uint8Array): Float64Array => new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);

function checkpointTests(open: () => Promise<Backend>): void {
  let b: Backend;
  beforeAll(async () => {
    b = await open();
  }, 120_000);
  afterAll(async () => {
    await b?.cleanup();
  });

  it('saves a compressed, content-addressed checkpoint and restores it exactly', async () => {
    const store = new CheckpointStore(b.db, b.artifacts);
    const s = state(40_000);
    const row = await store.save(meta({ model: 'roundtrip' }), s);
    expect(row).toMatchObject({ model: 'roundtrip', version: '1', state: 10, events: 250, replica: 'r1', watermarks: { r1: 3, r2: 7 }, codec: 'gzip', bytes: s.byteLength });
    expect(row.compressedBytes).toBeLessThan(row.bytes);
    expect(row.artifactKey).toBe(`sha256/${row.sha256}`);
    // The artifact is the gzip of the state; its SHA-256 is the row's.
    const artifact = await b.artifacts.get(row.artifactKey, row.sha256);
    expect(sha256Hex(artifact)).toBe(row.sha256);
    expect(artifact.byteLength).toBe(row.compressedBytes);
    expect(Buffer.from(gunzipSync(artifact)).equals(Buffer.from(s.buffer))).toBe(true);

    const restored = (await store.latest('roundtrip', '1'))!;
    expect(restored.row).toEqual(row);
    expect(restored.bytes.byteOffset).toBe(0);
    expect(f64(restored.bytes)).toEqual(s);
    expect(await store.latest('roundtrip', '2')).toBeUndefined();
    expect(await store.latest('nothing', '1')).toBeUndefined();
  });

  it('restores the newest of several, and takes raw bytes as well as a Float64Array', async () => {
    const store = new CheckpointStore(b.db, b.artifacts);
    for (let i = 1; i <= 3; i++) await store.save(meta({ model: 'newest', state: i }), state(1000, i));
    const raw = randomBytes(4096); // incompressible: stored all the same
    await store.save(meta({ model: 'newest', state: 4 }), raw);
    const restored = (await store.latest('newest', '1'))!;
    expect(restored.row.state).toBe(4);
    expect(Buffer.from(restored.bytes).equals(raw)).toBe(true);
    expect((await store.list('newest', '1')).map((r) => r.state)).toEqual([4, 3, 2, 1]);
  });

  it('falls back to the previous checkpoint when the newest artifact is corrupt or missing', async () => {
    const store = new CheckpointStore(b.db, b.artifacts);
    const rows = [];
    for (let i = 1; i <= 3; i++) rows.push(await store.save(meta({ model: 'fallback', state: i }), state(5000, i)));
    await b.corrupt(rows[2]!.artifactKey);
    let restored = (await store.latest('fallback', '1'))!;
    expect(restored.row.state).toBe(2);
    expect(f64(restored.bytes)).toEqual(state(5000, 2));
    await b.lose(rows[1]!.artifactKey);
    restored = (await store.latest('fallback', '1'))!;
    expect(restored.row.state).toBe(1);
    expect(f64(restored.bytes)).toEqual(state(5000, 1));
    // None left: an error, not an empty start that would drop the fleet's learned state.
    await b.corrupt(rows[0]!.artifactKey);
    await expect(store.latest('fallback', '1')).rejects.toMatchObject({ code: 'ARTIFACT_UNAVAILABLE' });
  });

  it('keeps the last N on save, and one per hour and per day when pruned later', async () => {
    const store = new CheckpointStore(b.db, b.artifacts, { retention: { last: 2, hourly: 3, daily: 2 } });
    const model = 'retention';
    const saved = [];
    for (let i = 1; i <= 6; i++) saved.push(await store.save(meta({ model, state: i }), state(2000, i)));
    // Saved within a second: the same hour and day, so the newest two are all that stays.
    expect((await store.list(model, '1')).map((r) => r.state)).toEqual([6, 5]);
    for (const r of saved.slice(0, 4)) expect(await b.stored(r.artifactKey)).toBe(false);
    for (const r of saved.slice(4, 6)) expect(await b.stored(r.artifactKey)).toBe(true);

    // Spread them over time (as if saved over days) and prune at a fixed "now".
    const now = new Date(Date.UTC(2025, 2, 10, 12, 30));
    const ago = (ms: number): Date => new Date(now.getTime() - ms);
    const H = 3_600_000;
    const at = [ago(3 * 24 * H), ago(30 * H), ago(26 * H), ago(2 * H + 60_000), ago(2 * H), ago(H), ago(1_000), ago(0)];
    for (let i = 0; i < at.length; i++) saved.push(await store.save(meta({ model, state: 100 + i }), state(2000, 100 + i)));
    const rows = await store.list(model, '1');
    expect(rows).toHaveLength(2); // pruned on each save
    for (let i = 0; i < at.length; i++) {
      await b.db.query('INSERT INTO checkpoints (model, version, state, events, replica, watermarks, codec, sha256, artifact_key, bytes, compressed_bytes, created_at) SELECT model, version, $2, events, replica, watermarks, codec, sha256, artifact_key, bytes, compressed_bytes, $3 FROM checkpoints WHERE id = $1', [rows[0]!.id, 200 + i, at[i]]);
    }
    await b.db.query('DELETE FROM checkpoints WHERE id = ANY($1::bigint[])', [rows.map((r) => r.id)]);
    await store.prune(model, '1', now);
    // last 2: 207, 206; hours 12:00 (207), 11:00 (205), 10:00 (204; 203 is older in it);
    // days: 03-10 (207), 03-09 (202 at 10:30; 201 at 06:30 is older). 200 (3 days) goes.
    expect((await store.list(model, '1')).map((r) => r.state)).toEqual([207, 206, 205, 204, 202]);
  });

  it('keeps an artifact that another checkpoint still names', async () => {
    const store = new CheckpointStore(b.db, b.artifacts, { retention: { last: 1, hourly: 0, daily: 0 } });
    const same = state(3000, 42);
    const first = await store.save(meta({ model: 'shared-a' }), same);
    const second = await store.save(meta({ model: 'shared-b' }), same);
    expect(second.artifactKey).toBe(first.artifactKey);
    await store.save(meta({ model: 'shared-a', state: 11 }), state(3000, 43)); // prunes `first`
    expect((await store.list('shared-a', '1')).map((r) => r.state)).toEqual([11]);
    expect(await b.stored(first.artifactKey)).toBe(true);
    expect(f64((await store.latest('shared-b', '1'))!.bytes)).toEqual(same);
  });

  it('refuses bad input with INVALID_ARGUMENT and records nothing', async () => {
    const store = new CheckpointStore(b.db, b.artifacts);
    const bad: Array<[Partial<CheckpointMeta>, unknown]> = [
      [{ model: '' }, state(8)],
      [{ state: -1 }, state(8)],
      [{ events: 1.5 }, state(8)],
      [{ watermarks: { r1: -2 } }, state(8)],
      [{ watermarks: [] as unknown as Record<string, number> }, state(8)],
      [{}, [1, 2, 3]],
    ];
    for (const [m, s] of bad) {
      await expect(store.save(meta({ model: 'bad', ...m }), s as Float64Array)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await store.list('bad', '1')).toEqual([]);
    expect(() => new CheckpointStore(b.db, b.artifacts, { retention: { last: 0 } })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
}

async function pgliteLocal(): Promise<Backend> {
  const t = await tempDir('sluice-ckpt-');
  const db = await PgliteThreadDb.open(path.join(t.dir, 'registry'));
  await migrate(db);
  const local = new LocalDirectoryStore(path.join(t.dir, 'artifacts'));
  return {
    db, artifacts: local,
    corrupt: (key) => writeFile(local.pathOf(key), randomBytes(64)),
    lose: (key) => rm(local.pathOf(key)),
    stored: (key) => local.exists(key),
    cleanup: async () => {
      await db.close();
      await t.cleanup();
    },
  };
}

async function postgresS3(): Promise<Backend> {
  const pg = await postgresBackend.open();
  const bucket = await createTestBucket();
  const tmp = await tempDir('sluice-ckpt-s3-');
  const s3 = new S3Store({
    bucket: bucket.bucket, prefix: 'checkpoints', endpoint: bucket.endpoint, region: bucket.region,
    accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey, forcePathStyle: true, stagingDir: tmp.dir,
  });
  return {
    db: pg.db, artifacts: s3,
    corrupt: async (key) => {
      await bucket.client.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: s3.objectKey(key), Body: randomBytes(64) }));
    },
    lose: async (key) => {
      await bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.bucket, Key: s3.objectKey(key) }));
    },
    stored: (key) => s3.exists(key),
    cleanup: async () => {
      await s3.close();
      await bucket.cleanup();
      await pg.cleanup();
      expect(await readdir(tmp.dir)).toEqual([]); // streamed uploads leave no staging files
      await tmp.cleanup();
    },
  };
}

describe('checkpoints (PGlite, local artifact store)', () => checkpointTests(pgliteLocal));

const both: Service = {
  name: 'PostgreSQL and S3',
  available: postgresService.available && s3Service.available,
  reason: [postgresService.reason, s3Service.reason].filter(Boolean).join('; '),
};
describeWith(both, 'checkpoints (PostgreSQL, S3)', () => checkpointTests(postgresS3));
