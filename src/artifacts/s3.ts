/**
 * Artifacts in S3 (or an S3-compatible server) through @aws-sdk/client-s3. Objects are named
 * `<prefix><key>` with content-addressed keys, so a put of bytes already there uploads nothing.
 * Uploads go through @aws-sdk/lib-storage, which splits anything larger than one part into a
 * multipart upload. Downloads are hashed as they stream and a mismatch is never returned.
 *
 * Fails fast: bounded connect and idle timeouts and few retries, so an unreachable store turns
 * into ARTIFACT_UNAVAILABLE in seconds (the cache in front of it can then serve what it holds).
 */
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { SluiceError } from '../errors.js';
import { collectHashed, mismatch, sha256Hex, type Hashed } from './integrity.js';
import { stageToFile } from './local.js';
import { artifactKey, checkExpected, hashOfKey, type ArtifactData, type ArtifactInfo, type ArtifactStore, type PutOptions } from './store.js';

export interface S3StoreOptions {
  bucket: string;
  /** Prepended to every key ("models/" gives "models/sha256/<hex>"); a "/" is added if missing. */
  prefix?: string;
  endpoint?: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style addressing (bucket in the path), which S3-compatible servers usually need. */
  forcePathStyle: boolean;
  /** Where streamed uploads are staged (their key is their hash, known only at the end). */
  stagingDir: string;
  /** Multipart part size (S3's minimum is 5 MiB); larger artifacts go multipart. */
  partSize?: number;
  /** Parts uploaded at once. */
  queueSize?: number;
  connectTimeoutMs?: number;
  /** Longest wait for a response to start (reads and lookups). */
  responseTimeoutMs?: number;
  /** Longest silence on a connection, also in the middle of a body, before the request fails. */
  idleTimeoutMs?: number;
  /** Longest time for one upload request (a part), body included. */
  uploadTimeoutMs?: number;
  /** Attempts per request (the SDK retries with backoff in between). */
  maxAttempts?: number;
}

export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;

function normalisePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+/, '');
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

interface AwsError {
  name?: string;
  $metadata?: { httpStatusCode?: number };
}

function isNotFound(e: unknown): boolean {
  const err = e as AwsError;
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.$metadata?.httpStatusCode === 404;
}

function unavailable(what: string, e: unknown): SluiceError {
  return new SluiceError('ARTIFACT_UNAVAILABLE', `the artifact store cannot be reached (${what}); try again shortly`, { cause: e });
}

export class S3Store implements ArtifactStore {
  readonly kind = 's3' as const;
  /** Reads and lookups: short timeouts. */
  readonly client: S3Client;
  /** Uploads: the same, except that sending a part may take as long as its size needs. */
  private readonly uploadClient: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  private readonly opts: S3StoreOptions;

  constructor(opts: S3StoreOptions) {
    this.opts = opts;
    this.bucket = opts.bucket;
    this.prefix = normalisePrefix(opts.prefix);
    const base = (requestTimeout: number): S3ClientConfig => ({
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      maxAttempts: opts.maxAttempts ?? 2,
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? 2_000,
        // Until the response starts; without throwOnRequestTimeout the SDK only logs a warning.
        requestTimeout,
        throwOnRequestTimeout: true,
        socketTimeout: opts.idleTimeoutMs ?? 10_000,
      },
      ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      ...(opts.accessKeyId !== undefined && opts.secretAccessKey !== undefined
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
    });
    this.client = new S3Client(base(opts.responseTimeoutMs ?? 5_000));
    this.uploadClient = new S3Client(base(opts.uploadTimeoutMs ?? 300_000));
  }

  /** The object name of a key. */
  objectKey(key: string): string {
    hashOfKey(key);
    return this.prefix + key;
  }

  async put(data: ArtifactData, opts: PutOptions = {}): Promise<ArtifactInfo> {
    if (opts.expectedSha256 !== undefined) checkExpected(opts.expectedSha256);
    if (data instanceof Uint8Array) {
      const sha256 = sha256Hex(data);
      if (opts.expectedSha256 !== undefined && opts.expectedSha256 !== sha256) throw mismatch(sha256, opts.expectedSha256, 'uploaded artifact');
      const info = { key: artifactKey(sha256), sha256, size: data.byteLength };
      if (!(await this.exists(info.key))) await this.upload(info.key, data, opts);
      opts.onProgress?.(data.byteLength);
      return info;
    }
    // A stream: its key is its hash, known only at its end, so stage it on disk first (bounded
    // memory), then upload the file under its final name.
    const staged = await stageToFile(data, this.opts.stagingDir, opts);
    try {
      const info = { key: artifactKey(staged.sha256), sha256: staged.sha256, size: staged.size };
      if (!(await this.exists(info.key))) await this.upload(info.key, createReadStream(staged.file), opts);
      return info;
    } finally {
      await rm(staged.file, { force: true });
    }
  }

  private async upload(key: string, body: Uint8Array | NodeJS.ReadableStream, opts: PutOptions): Promise<void> {
    const upload = new Upload({
      client: this.uploadClient,
      params: { Bucket: this.bucket, Key: this.objectKey(key), Body: body as Uint8Array, ContentType: 'application/octet-stream' },
      partSize: this.opts.partSize ?? DEFAULT_PART_SIZE,
      queueSize: this.opts.queueSize ?? 4,
      leavePartsOnError: false, // abort the multipart upload on failure: no orphaned parts
    });
    if (opts.onProgress && !(body instanceof Uint8Array)) {
      upload.on('httpUploadProgress', (p) => {
        if (p.loaded !== undefined) opts.onProgress!(p.loaded);
      });
    }
    try {
      await upload.done();
    } catch (e) {
      throw unavailable('upload failed', e);
    }
  }

  async get(key: string, expectedSha256: string): Promise<Uint8Array> {
    checkExpected(expectedSha256);
    const objectKey = this.objectKey(key);
    let read: Hashed;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      if (!res.Body) throw new Error('empty response body');
      read = await collectHashed(res.Body as AsyncIterable<Uint8Array>);
    } catch (e) {
      if (isNotFound(e)) throw new SluiceError('ARTIFACT_UNAVAILABLE', `artifact ${key} is not in the store`, { cause: e });
      throw unavailable('download failed', e);
    }
    read.hash.verify(expectedSha256, `artifact ${key}`);
    return read.bytes;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw unavailable('lookup failed', e);
    }
  }

  async remove(key: string): Promise<void> {
    const objectKey = this.objectKey(key); // a bad key is the caller's error, not the store's
    try {
      // S3 answers a delete of a missing object with success, as remove promises.
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (e) {
      throw unavailable('delete failed', e);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
    this.uploadClient.destroy();
  }
}
