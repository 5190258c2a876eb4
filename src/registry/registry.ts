/**
 * The model registry: the source of truth for which versions exist (immutable once registered)
 * and how each model serves them (its production version, and its route when it has one). A
 * facade over the operations in register.ts, stages.ts, routes.ts and queries.ts; every failure is a coded SluiceError
 * (REGISTRY_UNAVAILABLE when the database cannot be reached, retryable).
 */
import type { ArtifactStore } from '../artifacts/store.js';
import { isStorageFull, SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { parseManifest } from '../model/manifest.js';
import type { VersionSource } from '../repository/directory.js';
import type { Db } from './db.js';
import * as check from './validate.js';

/**
 * Every name a caller hands the registry is checked first (NAME_INVALID), before it reaches SQL:
 * PostgreSQL refuses a NUL in text with error 22021, which used to surface as a 500.
 */
const named = (model: string): string => check.modelName(model);
import * as q from './queries.js';
import { registerVersion } from './register.js';
import * as routeQueries from './routes.js';
import { promote, rollback, type RollbackOptions } from './stages.js';
import type {
  AuditEntry, AuditQuery, ChangeOptions, ModelDetail, ModelSummary, ModelVersion, PerformanceInput,
  PerformanceSnapshot, RegisterInput, RouteChange, RouteChangeOptions, RouteRecord, Stage, StageChange,
} from './types.js';
import type { RouteSpec } from '../routing/route.js';

/**
 * A registered version as the engine loads it (`engine.loadVersion(source)`): the manifest as
 * registered, and a payload read from the artifact store, SHA-256-verified while it streams.
 */
export function versionSource(version: ModelVersion, artifacts: ArtifactStore): VersionSource {
  const manifest = parseManifest(version.manifest, `${version.model}@${version.version}`);
  return {
    manifest,
    readPayload: () => artifacts.get(version.artifact.key, version.artifact.sha256),
  };
}

export class Registry {
  constructor(readonly db: Db, readonly artifacts: ArtifactStore) {}

  /** Unexpected failures become INTERNAL (logged here with their detail; clients get none). */
  private async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      // A full disk is the operator's to fix, not a bug: a coded, retryable answer.
      if (isStorageFull(e)) {
        log.error(`registry: ${op} failed: storage full`, errorFields(e));
        throw new SluiceError('STORAGE_FULL', `registry ${op} failed: no space left to store it`, { cause: e });
      }
      if (e instanceof SluiceError) throw e;
      log.error(`registry: ${op} failed`, errorFields(e));
      throw new SluiceError('INTERNAL', `registry ${op} failed`, { cause: e });
    }
  }

  /** Stores the artifact and registers the version (VERSION_EXISTS when it is taken). */
  register(input: RegisterInput): Promise<ModelVersion> {
    return this.run('register', () => registerVersion(this.db, this.artifacts, input));
  }

  listModels(): Promise<ModelSummary[]> {
    return this.run('list', () => q.listModels(this.db));
  }

  showModel(model: string): Promise<ModelDetail> {
    return this.run('show', () => q.showModel(this.db, named(model)));
  }

  /** Every model with its version strings in registration order (one query). */
  versionIndex(): Promise<Array<{ name: string; versions: string[] }>> {
    return this.run('version index', () => q.versionIndex(this.db));
  }

  /** A model's versions in registration order, optionally of one stage. */
  versions(model: string, opts: { stage?: Stage } = {}): Promise<ModelVersion[]> {
    return this.run('versions', () => q.versions(this.db, named(model), opts));
  }

  getVersion(model: string, version: string): Promise<ModelVersion> {
    return this.run('get version', () => q.getVersion(this.db, named(model), check.versionName(version)));
  }

  /** Every model's production version, by model name. */
  productionVersions(): Promise<Map<string, string>> {
    return this.run('production versions', () => q.productionVersions(this.db));
  }

  /**
   * Moves a version to a stage. To production: the previous production version is archived, in
   * the same transaction. Nothing is written when the version already has that stage.
   */
  promote(model: string, version: string, stage: Stage, opts: ChangeOptions): Promise<StageChange> {
    return this.run('promote', () => promote(this.db, named(model), check.versionName(version), stage, opts));
  }

  /** Back to the previous production version, or to `opts.to` (ROLLBACK_IMPOSSIBLE when none). */
  rollback(model: string, opts: RollbackOptions): Promise<StageChange> {
    return this.run('rollback', () => rollback(this.db, named(model), { ...opts, ...(opts.to === undefined ? {} : { to: check.versionName(opts.to) }) }));
  }

  /** The model's route (undefined when it has none: it serves its production version). */
  getRoute(model: string): Promise<RouteRecord | undefined> {
    return this.run('get route', () => routeQueries.getRoute(this.db, named(model)));
  }

  /**
   * Puts a route in force (audited, NOTIFY to every replica). The model and every version the
   * route names must be registered (VERSION_NOT_FOUND otherwise). Loading those versions is
   * the caller's (src/routing/control.ts): store a route only once they serve. On behalf of
   * `opts.owner` (default manual): another controller's route needs `opts.force` (ROUTE_OWNED).
   */
  setRoute(model: string, spec: RouteSpec, opts: RouteChangeOptions): Promise<RouteChange> {
    return this.run('set route', () => routeQueries.setRoute(this.db, named(model), spec, opts));
  }

  /** Removes the model's route: it serves its production version again (audited, NOTIFY; owners as setRoute). */
  clearRoute(model: string, opts: RouteChangeOptions): Promise<RouteChange> {
    return this.run('clear route', () => routeQueries.clearRoute(this.db, named(model), opts));
  }

  /** Every route in force, by model. */
  routes(): Promise<Map<string, { spec: RouteSpec; generation: number }>> {
    return this.run('routes', () => routeQueries.routes(this.db));
  }

  /** The audit log, newest first unless `order: 'asc'`. */
  audit(query: AuditQuery = {}): Promise<AuditEntry[]> {
    return this.run('audit', () => q.audit(this.db, query.model === undefined ? query : { ...query, model: named(query.model) }));
  }

  recordPerformance(model: string, version: string, snapshot: PerformanceInput): Promise<PerformanceSnapshot> {
    return this.run('record performance', () => q.recordPerformance(this.db, named(model), check.versionName(version), snapshot));
  }

  /** Snapshots, newest first. */
  performance(model: string, opts: { version?: string; limit?: number } = {}): Promise<PerformanceSnapshot[]> {
    return this.run('performance', () => q.performance(this.db, named(model), opts.version === undefined ? opts : { ...opts, version: check.versionName(opts.version) }));
  }

  /**
   * A version ready for `engine.loadVersion`: the named one, or the model's production version
   * (VERSION_NOT_FOUND when it has none).
   */
  openVersion(model: string, version?: string): Promise<VersionSource> {
    return this.run('open version', async () => {
      named(model);
      let v = version === undefined ? undefined : check.versionName(version);
      if (v === undefined) {
        v = await q.productionVersion(this.db, model);
        if (v === undefined) {
          await q.requireModel(this.db, model); // MODEL_NOT_FOUND when it does not exist at all
          throw new SluiceError('VERSION_NOT_FOUND', `model ${model} has no production version`);
        }
      }
      return versionSource(await q.getVersion(this.db, model, v), this.artifacts);
    });
  }
}

export type { RollbackOptions };
