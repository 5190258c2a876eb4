/** Writes model versions into a repository directory (tests, import tools, the CLI later). */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256Hex } from '../artifacts/integrity.js';
import { MANIFEST_FILE } from './directory.js';

/** A manifest in on-disk form without its payload entry (computed here). */
export type ManifestDraft = Record<string, unknown> & { name: string; version: string };

/**
 * Writes `<root>/<name>/<version>/` with the payload and a model.json naming its SHA-256.
 * Returns the version directory.
 */
export async function writeModelVersion(root: string, draft: ManifestDraft, payloadFile: string, payload: Uint8Array): Promise<string> {
  const dir = path.join(root, draft.name, draft.version);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, payloadFile), payload);
  const manifest = { ...draft, payload: { file: payloadFile, sha256: sha256Hex(payload) } };
  await writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
  return dir;
}
