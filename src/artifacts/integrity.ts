/** Artifact integrity: a payload is used only if its SHA-256 equals the one its manifest names. */
import { createHash } from 'node:crypto';
import { SluiceError } from '../errors.js';

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Throws ARTIFACT_INTEGRITY unless `bytes` hash to `expected` (lowercase hex). */
export function verifySha256(bytes: Uint8Array, expected: string, what: string): void {
  const actual = sha256Hex(bytes);
  if (actual !== expected) {
    throw new SluiceError('ARTIFACT_INTEGRITY', `${what}: SHA-256 ${actual} does not match the manifest's ${expected}; not loaded`);
  }
}
