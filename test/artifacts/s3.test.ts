/**
 * The S3 store against a real S3-compatible server (moto in CI), and the local cache in front of
 * it, including S3 going away (a TCP gate in front of the server is cut, so other test files
 * sharing the server are not disturbed) and a server that is simply not there (a closed port,
 * which needs no service and always runs).
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CachedStore } from '../../src/artifacts/cached.js';
import { sha256Hex } from '../../src/artifacts/integrity.js';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { openArtifactStore } from '../../src/artifacts/open.js';
import { S3Store, type S3StoreOptions } from '../../src/artifacts/s3.js';
import { artifactKey } from '../../src/artifacts/store.js';
import { SluiceError } from '../../src/errors.js';
import { createTestBucket, describeWith, s3Service, tcpGate, tempDir, testConfig, type TestBucket } from '../helpers/services.js';

const MiB = 1024 * 1024;

async function timed<T>(p: Promise<T>): Promise<{ ms: number; error: unknown }> {
  const t0 = performance.now();
  const error = await p.then(() => undefined, (e: unknown) => e);
  return { ms: performance.now() - t0, error };
}

describeWith(s3Service, 'S3 artifact store', () => {
  let b: TestBucket;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const opened: Array<{ close: () => Promise<void> }> = [];

  const s3 = (over: Partial<S3StoreOptions> = {}): S3Store => {
    const s = new S3Store({
      bucket: b.bucket, prefix: 'models', endpoint: b.endpoint, region: b.region,
      accessKeyId: b.accessKeyId, secretAccessKey: b.secretAccessKey, forcePathStyle: true,
      stagingDir: path.join(tmp.dir, 'staging'), partSize: 5 * MiB, connectTimeoutMs: 1000, responseTimeoutMs: 2000, ...over,
    });
    opened.push(s);
    return s;
  };

  beforeAll(async () => {
    b = await createTestBucket();
    tmp = await tempDir('sluice-s3-');
  });
  afterAll(async () => {
    for (const s of opened) await s.close();
    await b?.cleanup();
    await tmp?.cleanup();
  });

  it('stores bytes once under the prefix and reads them back verified', async () => {
    const store = s3();
    const bytes = randomBytes(50_000);
    const send = vi.spyOn((store as unknown as { uploadClient: S3Store['client'] }).uploadClient, 'send');
    const info = await store.put(bytes);
    expect(info).toEqual({ key: artifactKey(sha256Hex(bytes)), sha256: sha256Hex(bytes), size: 50_000 });
    const uploads = (): number => send.mock.calls.filter(([cmd]) => cmd.constructor.name === 'PutObjectCommand').length;
    expect(uploads()).toBe(1);
    expect(await store.put(bytes)).toEqual(info); // already there: not uploaded again
    expect(uploads()).toBe(1);
    send.mockRestore();
    await b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: `models/${info.key}` }));
    expect(Buffer.from(await store.get(info.key, info.sha256))).toEqual(bytes);
    expect(await store.exists(info.key)).toBe(true);
    expect(await store.exists(artifactKey(sha256Hex(randomBytes(4))))).toBe(false);
  });

  it('uploads large artifacts in several parts (multipart), from a stream', async () => {
    const store = s3();
    const bytes = randomBytes(11 * MiB + 123);
    const progress: number[] = [];
    const chunks = Array.from({ length: 12 }, (_, i) => bytes.subarray(i * MiB, (i + 1) * MiB));
    const info = await store.put(Readable.from(chunks), { onProgress: (n) => progress.push(n) });
    expect(info.sha256).toBe(sha256Hex(bytes));
    expect(progress.at(-1)).toBe(bytes.length);
    // A multipart object's ETag is "<md5 of the part md5s>-<number of parts>".
    const head = await b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: `models/${info.key}` }));
    expect(head.ETag).toMatch(/-3"?$/);
    expect(head.ContentLength).toBe(bytes.length);
    expect(sha256Hex(await store.get(info.key, info.sha256))).toBe(info.sha256);
  });

  it('refuses an object whose bytes do not match its hash (ARTIFACT_INTEGRITY), and does not cache it', async () => {
    const good = randomBytes(20_000);
    const sha = sha256Hex(good);
    const evil = Buffer.from(good);
    evil[100] = evil[100]! ^ 1;
    await b.client.send(new PutObjectCommand({ Bucket: b.bucket, Key: `models/${artifactKey(sha)}`, Body: evil }));
    const store = s3();
    await expect(store.get(artifactKey(sha), sha)).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
    const cache = new LocalDirectoryStore(path.join(tmp.dir, 'cache-corrupt'));
    const cached = new CachedStore(store, cache);
    await expect(cached.get(artifactKey(sha), sha)).rejects.toMatchObject({ code: 'ARTIFACT_INTEGRITY' });
    expect(await cache.exists(artifactKey(sha))).toBe(false);
  });

  it('caches verified downloads, serves them while S3 is down, and fails fast for the rest', async () => {
    const gate = await tcpGate(b.endpoint);
    opened.push(gate);
    const cache = new LocalDirectoryStore(path.join(tmp.dir, 'cache-outage'));
    const store = new CachedStore(s3({ endpoint: gate.url }), cache);
    // a: uploaded through this replica as bytes (cached at once); b: downloaded once (cached
    // by the download); c: uploaded by "another replica", never read here.
    const a = randomBytes(30_000);
    const bb = randomBytes(30_000);
    const c = randomBytes(30_000);
    const ia = await store.put(a);
    const ib = await s3().put(bb);
    const ic = await s3().put(c);
    expect(await cache.exists(ib.key)).toBe(false);
    expect(Buffer.from(await store.get(ib.key, ib.sha256))).toEqual(bb);
    expect(await cache.exists(ib.key)).toBe(true);

    gate.down();
    expect(Buffer.from(await store.get(ia.key, ia.sha256))).toEqual(a);
    expect(Buffer.from(await store.get(ib.key, ib.sha256))).toEqual(bb);
    const miss = await timed(store.get(ic.key, ic.sha256));
    expect(miss.error).toBeInstanceOf(SluiceError);
    expect((miss.error as SluiceError).code).toBe('ARTIFACT_UNAVAILABLE');
    expect(miss.ms).toBeLessThan(3000);
    const put = await timed(store.put(randomBytes(100)));
    expect((put.error as SluiceError).code).toBe('ARTIFACT_UNAVAILABLE');

    gate.up();
    expect(Buffer.from(await store.get(ic.key, ic.sha256))).toEqual(c);
  });

  it('replaces a corrupted cached copy with a verified download', async () => {
    const cache = new LocalDirectoryStore(path.join(tmp.dir, 'cache-repair'));
    const store = new CachedStore(s3(), cache);
    const bytes = randomBytes(10_000);
    const info = await store.put(bytes);
    await writeFile(cache.pathOf(info.key), randomBytes(10_000));
    expect(Buffer.from(await store.get(info.key, info.sha256))).toEqual(bytes);
    expect(await readFile(cache.pathOf(info.key))).toEqual(bytes);
  });

  it('removes an object and its cached copy; removing what is not there is no error', async () => {
    const cache = new LocalDirectoryStore(path.join(tmp.dir, 'cache-remove'));
    const remote = s3();
    const store = new CachedStore(remote, cache);
    const info = await store.put(randomBytes(5_000));
    const kept = await store.put(randomBytes(5_000));
    expect(await cache.exists(info.key)).toBe(true);
    await store.remove(info.key);
    expect(await remote.exists(info.key)).toBe(false);
    expect(await cache.exists(info.key)).toBe(false);
    await expect(store.get(info.key, info.sha256)).rejects.toMatchObject({ code: 'ARTIFACT_UNAVAILABLE' });
    await store.remove(info.key);
    expect(await store.exists(kept.key)).toBe(true);
    await expect(remote.remove('sha256/not-a-hash')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('gives up within its timeouts on a server that accepts connections and never answers', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const store = s3({ endpoint: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, responseTimeoutMs: 500, maxAttempts: 2 });
      const sha = sha256Hex(randomBytes(4));
      const r = await timed(store.get(artifactKey(sha), sha));
      expect((r.error as SluiceError).code).toBe('ARTIFACT_UNAVAILABLE');
      expect(r.ms).toBeLessThan(4000);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('is what the configuration gives with a bucket: S3 behind a cache, path-style with an endpoint', async () => {
    const config = testConfig({
      dataDir: tmp.dir, s3Bucket: b.bucket, s3Prefix: 'cfg/', s3Endpoint: b.endpoint, s3Region: b.region,
      s3AccessKeyId: b.accessKeyId, s3SecretAccessKey: b.secretAccessKey,
    });
    const store = await openArtifactStore(config);
    opened.push(store);
    expect(store).toBeInstanceOf(CachedStore);
    const bytes = randomBytes(1000);
    const info = await store.put(bytes);
    await b.client.send(new HeadObjectCommand({ Bucket: b.bucket, Key: `cfg/${info.key}` }));
    expect(Buffer.from(await store.get(info.key, info.sha256))).toEqual(bytes);
    expect(await readFile(path.join(tmp.dir, 'artifact-cache', info.key))).toEqual(bytes);
  });
});

describe('S3 store with nothing listening', () => {
  it('fails fast with ARTIFACT_UNAVAILABLE, while the cache still serves what it holds', async () => {
    const tmp = await tempDir('sluice-s3-closed-');
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    await new Promise((r) => free.close(r));
    const remote = new S3Store({
      bucket: 'b', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's',
      forcePathStyle: true, stagingDir: path.join(tmp.dir, 'staging'),
    });
    try {
      const cache = new LocalDirectoryStore(path.join(tmp.dir, 'cache'));
      const store = new CachedStore(remote, cache);
      const cachedBytes = randomBytes(2000);
      const cached = await cache.put(cachedBytes);
      expect(Buffer.from(await store.get(cached.key, cached.sha256))).toEqual(cachedBytes);
      const sha = sha256Hex(randomBytes(8));
      const calls: Array<() => Promise<unknown>> = [() => store.get(artifactKey(sha), sha), () => remote.exists(artifactKey(sha)), () => store.put(randomBytes(10)), () => store.put(Readable.from([randomBytes(10)]))];
      for (const call of calls) {
        const r = await timed(call());
        expect((r.error as SluiceError).code).toBe('ARTIFACT_UNAVAILABLE');
        expect(r.ms).toBeLessThan(2000);
      }
    } finally {
      await remote.close();
      await tmp.cleanup();
    }
  });
});
