/** Artifact integrity: a payload is used only if its SHA-256 equals the one its manifest names. */
import { createHash, type Hash } from 'node:crypto';
import { SluiceError } from '../errors.js';

/** A SHA-256 as the registry, manifests and artifact keys write it: 64 lowercase hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The SHA-256 of bytes, or of a string's UTF-8 encoding, in lowercase hex. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** ARTIFACT_INTEGRITY. Worded for any expectation: a manifest's hash, an upload's, a key's. */
export function mismatch(actual: string, expected: string, what: string): SluiceError {
  return new SluiceError('ARTIFACT_INTEGRITY', `${what}: SHA-256 ${actual} does not match the expected ${expected}`);
}

/** Throws ARTIFACT_INTEGRITY unless `bytes` hash to `expected` (lowercase hex). */
export function verifySha256(bytes: Uint8Array, expected: string, what: string): void {
  const actual = sha256Hex(bytes);
  if (actual !== expected) throw mismatch(actual, expected, what);
}

/**
 * Hashes a byte stream as it passes (the SHA-256 is checked while downloading, not after a
 * second read), counting its size. `verify` throws ARTIFACT_INTEGRITY on a mismatch.
 */
export class StreamingSha256 {
  private readonly hash: Hash = createHash('sha256');
  private digest: string | undefined;
  size = 0;

  update(chunk: Uint8Array): void {
    if (this.digest !== undefined) throw new Error('StreamingSha256: already finished');
    this.hash.update(chunk);
    this.size += chunk.byteLength;
  }

  /** The hex digest (the hash is finished on the first call). */
  hex(): string {
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }

  verify(expected: string, what: string): void {
    const actual = this.hex();
    if (actual !== expected) throw mismatch(actual, expected, what);
  }
}

export interface Hashed {
  bytes: Buffer;
  hash: StreamingSha256;
}

/**
 * Reads a byte stream to its end, hashing it as it passes. The caller verifies the hash after
 * mapping read errors, so a failed read and a mismatch stay distinct errors.
 */
export async function collectHashed(chunks: AsyncIterable<Uint8Array>): Promise<Hashed> {
  const hash = new StreamingSha256();
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) {
    hash.update(chunk);
    parts.push(chunk);
  }
  return { bytes: Buffer.concat(parts, hash.size), hash };
}
