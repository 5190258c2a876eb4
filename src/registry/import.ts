/**
 * Imports a model repository directory (the engine's Triton-style layout,
 * `<root>/<name>/<version>/model.json` beside its payload) into the registry, each version
 * under its own version string. Accepts the repository root, one model's directory, or one
 * version's directory. Re-importing is harmless: a version already registered with the same
 * payload is reported `exists`; one registered with a different payload fails (VERSION_EXISTS).
 */
import path from 'node:path';
import { SluiceError } from '../errors.js';
import { manifestToJSON } from '../model/manifest.js';
import { DirectoryRepository, MANIFEST_FILE, statOrUndefined } from '../repository/directory.js';
import type { Registry } from './registry.js';
import type { Actor } from './types.js';

export interface ImportedVersion {
  model: string;
  version: string;
  status: 'registered' | 'exists';
}

export interface ImportOptions {
  actor: Actor;
  reason?: string;
}

/** Which (repository root, model, version) triples `dir` holds. */
async function findVersions(dir: string): Promise<Array<{ repo: DirectoryRepository; name: string; version: string }>> {
  const abs = path.resolve(dir);
  if ((await statOrUndefined(path.join(abs, MANIFEST_FILE)))?.isFile()) {
    // A version directory: <root>/<name>/<version>.
    const repo = new DirectoryRepository(path.dirname(path.dirname(abs)));
    return [{ repo, name: path.basename(path.dirname(abs)), version: path.basename(abs) }];
  }
  const asModel = new DirectoryRepository(path.dirname(abs));
  const own = await asModel.versions(path.basename(abs));
  if (own.length > 0) return own.map((version) => ({ repo: asModel, name: path.basename(abs), version }));
  const asRoot = new DirectoryRepository(abs);
  const out = [];
  for (const entry of await asRoot.index()) {
    for (const version of entry.versions) out.push({ repo: asRoot, name: entry.name, version });
  }
  if (out.length === 0) throw new SluiceError('MODEL_NOT_FOUND', `no model versions (${MANIFEST_FILE}) found in ${path.basename(abs)}`);
  return out;
}

export async function importDirectory(registry: Registry, dir: string, opts: ImportOptions): Promise<ImportedVersion[]> {
  const out: ImportedVersion[] = [];
  for (const { repo, name, version } of await findVersions(dir)) {
    // open() checks the manifest and that it names this directory.
    const source = await repo.open(name, version);
    const sha256 = source.manifest.payload.sha256;
    // Every start imports again: a version registered before is recognised by the hash its
    // manifest names, without reading its payload.
    if (!(await registeredWith(registry, name, version, sha256))) {
      try {
        await registry.register({
          manifest: manifestToJSON(source.manifest),
          payload: await source.readPayload(), // checks the payload's hash
          version,
          actor: opts.actor,
          reason: opts.reason ?? 'imported from a model repository directory',
        });
        out.push({ model: name, version, status: 'registered' });
        continue;
      } catch (e) {
        // Another replica importing the same directory registered it meanwhile.
        if (!(e instanceof SluiceError) || e.code !== 'VERSION_EXISTS' || !(await registeredWith(registry, name, version, sha256))) throw e;
      }
    }
    out.push({ model: name, version, status: 'exists' });
  }
  return out;
}

/** Whether the version is registered with this payload hash; VERSION_EXISTS if with another. */
async function registeredWith(registry: Registry, name: string, version: string, sha256: string): Promise<boolean> {
  let existing;
  try {
    existing = await registry.getVersion(name, version);
  } catch (e) {
    if (e instanceof SluiceError && (e.code === 'VERSION_NOT_FOUND' || e.code === 'MODEL_NOT_FOUND')) return false;
    throw e;
  }
  if (existing.artifact.sha256 !== sha256) {
    throw new SluiceError('VERSION_EXISTS', `${name} ${version} is already registered with a different payload; versions are immutable`);
  }
  return true;
}
