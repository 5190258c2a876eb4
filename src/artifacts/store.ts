/**
 * Artifact stores keep model payloads (ONNX graphs, weight files: data, never code) by content:
 * the key of some bytes is `sha256/<hex of their SHA-256>`, so the same bytes are stored once
 * and a key says what its bytes must hash to. Every read is verified while it streams, and a
 * mismatch is never returned (ARTIFACT_INTEGRITY).
 */
import { SluiceError } from '../errors.js';
import { SHA256_HEX } from './integrity.js';

/** Bytes, or a stream of them (a Node Readable, a web ReadableStream, an async generator). */
export type ArtifactData = Uint8Array | AsyncIterable<Uint8Array>;

export interface ArtifactInfo {
  /** `sha256/<hex>` */
  key: string;
  sha256: string;
  size: number;
}

export interface PutOptions {
  /** When the caller knows the hash, a stream that does not match is refused (ARTIFACT_INTEGRITY). */
  expectedSha256?: string;
  /** Bytes consumed so far (for progress bars). */
  onProgress?: (bytes: number) => void;
}

export interface ArtifactStore {
  readonly kind: 'local' | 's3' | 'cached-s3';
  /** Stores the bytes (once per content) and says under which key. */
  put(data: ArtifactData, opts?: PutOptions): Promise<ArtifactInfo>;
  /**
   * The bytes under `key`, verified against `expectedSha256` while read. Throws
   * ARTIFACT_INTEGRITY on a mismatch, ARTIFACT_UNAVAILABLE when the store cannot be reached or
   * does not have the key.
   */
  get(key: string, expectedSha256: string): Promise<Uint8Array>;
  exists(key: string): Promise<boolean>;
  /**
   * Deletes the bytes under `key` (no error when they are not there). For data whose lifetime
   * is managed (pruned checkpoints); the caller checks that nothing else names the key.
   */
  remove(key: string): Promise<void>;
  close(): Promise<void>;
}

const KEY_PREFIX = 'sha256/';

export function artifactKey(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new SluiceError('INVALID_ARGUMENT', 'an artifact hash must be 64 lowercase hex digits');
  return KEY_PREFIX + sha256;
}

/** The hash a key names; refuses anything else (keys become file paths and object names). */
export function hashOfKey(key: string): string {
  const hex = typeof key === 'string' && key.startsWith(KEY_PREFIX) ? key.slice(KEY_PREFIX.length) : '';
  if (!SHA256_HEX.test(hex)) throw new SluiceError('INVALID_ARGUMENT', 'an artifact key must be sha256/<64 lowercase hex digits>');
  return hex;
}

export function checkExpected(expectedSha256: string): void {
  if (typeof expectedSha256 !== 'string' || !SHA256_HEX.test(expectedSha256)) {
    throw new SluiceError('INVALID_ARGUMENT', 'an expected SHA-256 must be 64 lowercase hex digits');
  }
}

/** Normalises any ArtifactData to an async iterable of byte chunks. */
export async function* chunksOf(data: ArtifactData): AsyncIterable<Uint8Array> {
  if (data instanceof Uint8Array) {
    yield data;
    return;
  }
  for await (const chunk of data as AsyncIterable<Uint8Array | string>) {
    // A Readable in string mode would be a caller bug; bytes are bytes.
    if (typeof chunk === 'string') throw new SluiceError('INVALID_ARGUMENT', 'artifact streams must yield bytes, not strings');
    yield chunk;
  }
}
