/**
 * The model repository on disk, in the style of Triton's: `<root>/<model>/<version>/model.json`
 * beside the payload file the manifest names. This is the embedded default source of models.
 */
import type { Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { verifySha256 } from '../artifacts/integrity.js';
import { SluiceError } from '../errors.js';
import { compareVersions, parseManifest, type Manifest } from '../model/manifest.js';
import { isValidName } from '../names.js';

export const MANIFEST_FILE = 'model.json';

/** One model version ready to load: its manifest and a reader of its verified payload. */
export interface VersionSource {
  manifest: Manifest;
  /** Reads the payload and checks its SHA-256; throws ARTIFACT_INTEGRITY on a mismatch. */
  readPayload(): Promise<Uint8Array>;
}

export interface RepositoryEntry {
  name: string;
  versions: string[];
}

/** What `p` is, or undefined when it cannot be read (missing, no permission): callers treat both alike. */
export async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

async function isDir(p: string): Promise<boolean> {
  return (await statOrUndefined(p))?.isDirectory() ?? false;
}

export class DirectoryRepository {
  constructor(readonly root: string) {}

  /** Every model in the directory is served at start. */
  async startup(): Promise<string[]> {
    return (await this.index()).map((e) => e.name);
  }

  /** Every model directory with its version directories (latest last). */
  async index(): Promise<RepositoryEntry[]> {
    if (!(await isDir(this.root))) return [];
    const names = (await readdir(this.root)).filter((n) => isValidName(n)).sort();
    const out: RepositoryEntry[] = [];
    for (const name of names) {
      const versions = await this.versions(name);
      if (versions.length > 0) out.push({ name, versions });
    }
    return out;
  }

  /** Version directories of `name` holding a manifest, in ascending version order. */
  async versions(name: string): Promise<string[]> {
    if (!isValidName(name)) return [];
    const dir = path.join(this.root, name);
    if (!(await isDir(dir))) return [];
    const found: string[] = [];
    for (const v of await readdir(dir)) {
      if (!isValidName(v)) continue;
      try {
        await stat(path.join(dir, v, MANIFEST_FILE));
        found.push(v);
      } catch {
        // A version directory without a manifest is not a version (Triton ignores such too).
      }
    }
    return found.sort(compareVersions);
  }

  /** Opens `name` at `version` (latest when omitted). */
  async open(name: string, version?: string): Promise<VersionSource> {
    const versions = await this.versions(name);
    if (versions.length === 0) throw new SluiceError('MODEL_NOT_FOUND', `model ${name} is not in the repository`);
    const v = version ?? versions[versions.length - 1]!;
    if (!versions.includes(v)) throw new SluiceError('VERSION_NOT_FOUND', `model ${name} has no version ${v} in the repository`);
    const dir = path.join(this.root, name, v);
    const where = `${name}/${v}/${MANIFEST_FILE}`;
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    } catch (e) {
      throw new SluiceError('MANIFEST_INVALID', `${where}: cannot read JSON (${(e as Error).message.slice(0, 120)})`);
    }
    const manifest = parseManifest(raw, where);
    if (manifest.name !== name || manifest.version !== v) {
      throw new SluiceError('MANIFEST_INVALID', `${where}: names ${manifest.name}@${manifest.version}, but lives in ${name}/${v}`);
    }
    return {
      manifest,
      async readPayload() {
        let bytes: Uint8Array;
        try {
          bytes = await readFile(path.join(dir, manifest.payload.file));
        } catch {
          throw new SluiceError('MODEL_LOAD_FAILED', `${name}@${v}: payload ${manifest.payload.file} cannot be read`);
        }
        verifySha256(bytes, manifest.payload.sha256, `${name}@${v}`);
        return bytes;
      },
    };
  }
}
