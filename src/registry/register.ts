/**
 * Registering a model version: check the manifest and metadata, store the artifact (content-
 * addressed, so a retry or a duplicate costs nothing), then in one transaction pick the version
 * (explicit, or the next semver under the model's lock), refuse a duplicate, insert the
 * immutable row and its audit row.
 */
import type { ArtifactStore } from '../artifacts/store.js';
import { SluiceError } from '../errors.js';
import { manifestToJSON, parseManifest, type Manifest } from '../model/manifest.js';
import type { Db } from './db.js';
import { sqlState } from './db.js';
import { VERSION_COLUMNS, toModelVersion } from './rows.js';
import { checkBump, nextVersion } from './semver.js';
import { ensureAndLockModel, writeAudit } from './tx.js';
import type { ModelVersion, RegisterInput } from './types.js';
import * as check from './validate.js';

/** Payload file names when a manifest does not say. */
const DEFAULT_FILE: Record<string, string> = { onnx: 'model.onnx', linear: 'weights.json', logistic: 'weights.json', fixture: 'fixture.json' };
const PLACEHOLDER_SHA = '0'.repeat(64);

function draftOf(raw: unknown): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SluiceError('MANIFEST_INVALID', 'manifest must be an object');
  return raw as Record<string, unknown>;
}

/** The manifest with its version and payload filled in, fully checked. */
function completeManifest(draft: Record<string, unknown>, version: string, sha256: string): Manifest {
  const payload = (typeof draft.payload === 'object' && draft.payload !== null ? draft.payload : {}) as Record<string, unknown>;
  const file = payload.file ?? DEFAULT_FILE[String(draft.kind)] ?? 'payload.bin';
  return parseManifest({ ...draft, version, payload: { ...payload, file, sha256 } }, 'manifest');
}

export async function registerVersion(db: Db, artifacts: ArtifactStore, input: RegisterInput): Promise<ModelVersion> {
  const draft = draftOf(input.manifest);
  const model = check.modelName(draft.name, 'MANIFEST_INVALID');
  const actor = check.actor(input.actor);
  const reason = check.optionalText(input.reason, 'reason', 4096);
  if (input.version !== undefined && input.bump !== undefined) throw new SluiceError('INVALID_ARGUMENT', 'give a version or a bump, not both');
  if (input.bump !== undefined) checkBump(input.bump); // before the upload, not only when the version is picked
  const explicit = input.bump !== undefined ? undefined : input.version ?? (draft.version === undefined ? undefined : String(draft.version));
  if (explicit === undefined && input.bump === undefined) throw new SluiceError('INVALID_ARGUMENT', 'give a version (in the manifest or explicitly) or a bump');
  if (explicit !== undefined) check.versionName(explicit, input.version !== undefined ? 'NAME_INVALID' : 'MANIFEST_INVALID');
  const meta = {
    trainingConfig: check.jsonObject(input.trainingConfig, 'trainingConfig'),
    hyperparameters: check.jsonObject(input.hyperparameters, 'hyperparameters'),
    metrics: check.jsonObject(input.metrics, 'metrics'),
    cvScores: check.cvScores(input.cvScores),
    tags: check.tags(input.tags),
    notes: check.optionalText(input.notes, 'notes', 64 * 1024),
    parentVersion: input.parentVersion === undefined ? null : check.versionName(input.parentVersion),
  };
  const declaredSha = (draft.payload as { sha256?: unknown } | undefined)?.sha256;
  // Everything about the manifest except its final version and hash, checked before any upload.
  completeManifest(draft, explicit ?? '1.0.0', typeof declaredSha === 'string' ? declaredSha : PLACEHOLDER_SHA);
  if (explicit !== undefined) await refuseExisting(db, model, explicit);

  const info = await artifacts.put(input.payload, {
    ...(typeof declaredSha === 'string' ? { expectedSha256: declaredSha } : {}),
    ...(input.onProgress ? { onProgress: input.onProgress } : {}),
  });

  try {
    return await db.transaction(async (tx) => {
      await ensureAndLockModel(tx, model);
      const existing = (await tx.query<{ version: string }>('SELECT version FROM model_versions WHERE model = $1', [model])).map((r) => r.version);
      const version = explicit ?? nextVersion(existing, input.bump!);
      if (existing.includes(version)) throw versionExists(model, version);
      if (meta.parentVersion !== null && !existing.includes(meta.parentVersion)) {
        throw new SluiceError('VERSION_NOT_FOUND', `parent version ${meta.parentVersion} of ${model} is not registered`);
      }
      const manifest = completeManifest(draft, version, info.sha256);
      const rows = await tx.query(
        `INSERT INTO model_versions (model, version, kind, signature, manifest, artifact_key, artifact_file, size_bytes, sha256,
           training_config, hyperparameters, metrics, cv_scores, tags, notes, parent_version, created_by)
         VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13::jsonb, $14::jsonb, $15, $16, $17)
         RETURNING ${VERSION_COLUMNS}`,
        [
          model, version, manifest.kind, JSON.stringify(manifest.signature), JSON.stringify(manifestToJSON(manifest)),
          info.key, manifest.payload.file, info.size, info.sha256,
          JSON.stringify(meta.trainingConfig), JSON.stringify(meta.hyperparameters), JSON.stringify(meta.metrics),
          JSON.stringify(meta.cvScores), JSON.stringify(meta.tags), meta.notes, meta.parentVersion, actor,
        ],
      );
      await writeAudit(tx, {
        model, action: 'register', fromVersion: meta.parentVersion, toVersion: version,
        fromStage: null, toStage: 'development', actor, reason,
      });
      return toModelVersion(rows[0]!);
    });
  } catch (e) {
    // The lock makes a duplicate impossible to insert concurrently; the index is the last word.
    if (sqlState(e) === '23505') throw versionExists(model, explicit ?? '(bumped)');
    throw e;
  }
}

function versionExists(model: string, version: string): SluiceError {
  return new SluiceError('VERSION_EXISTS', `${model} ${version} is already registered; versions are immutable`);
}

async function refuseExisting(db: Db, model: string, version: string): Promise<void> {
  const rows = await db.query('SELECT 1 FROM model_versions WHERE model = $1 AND version = $2', [model, version]);
  if (rows.length > 0) throw versionExists(model, version);
}
