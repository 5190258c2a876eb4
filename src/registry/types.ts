/** What the registry stores and returns. Dates are JS Dates; sizes and counts are numbers. */
import type { ModelKind, Signature } from '../model/manifest.js';
import type { ArtifactData } from '../artifacts/store.js';
import type { RouteJson, RouteOwner, RouteSpec } from '../routing/route.js';
import type { Bump } from './semver.js';

export const STAGES = ['development', 'staging', 'production', 'archived'] as const;
export type Stage = (typeof STAGES)[number];

export function isStage(s: unknown): s is Stage {
  return typeof s === 'string' && (STAGES as readonly string[]).includes(s);
}

/** Who did something: the NAME of the API key used (never the secret). */
export type Actor = string;

export interface RegisterInput {
  /**
   * The manifest in model.json form. `version` is optional (taken from `version`/`bump` when
   * given); `payload.file` defaults by kind; `payload.sha256`, when present, must match the
   * payload (a corrupted upload is refused with ARTIFACT_INTEGRITY).
   */
  manifest: Record<string, unknown>;
  /** The artifact: bytes or a stream of them. */
  payload: ArtifactData;
  /** An explicit version (wins over the manifest's); exclusive with `bump`. */
  version?: string;
  /** Next semantic version after the model's latest registered one (1.0.0 for the first). */
  bump?: Bump;
  trainingConfig?: Record<string, unknown>;
  hyperparameters?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  cvScores?: number[];
  tags?: string[];
  notes?: string;
  /** A version of the same model this one derives from (retrained, fine-tuned). */
  parentVersion?: string;
  actor: Actor;
  /** Why (goes into the audit row). */
  reason?: string;
  /** Artifact bytes consumed so far (upload progress). */
  onProgress?: (bytes: number) => void;
}

export interface ModelVersion {
  model: string;
  version: string;
  kind: ModelKind;
  stage: Stage;
  signature: Signature;
  /** The manifest as registered, in model.json form (payload.sha256 = `artifact.sha256`). */
  manifest: Record<string, unknown>;
  artifact: { key: string; file: string; size: number; sha256: string };
  trainingConfig: Record<string, unknown>;
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  cvScores: number[];
  tags: string[];
  notes: string;
  parentVersion: string | null;
  createdBy: Actor;
  createdAt: Date;
  stageChangedAt: Date;
}

export interface ModelSummary {
  name: string;
  versionCount: number;
  /** The most recently registered version. */
  latestVersion: string | null;
  productionVersion: string | null;
  stages: Record<Stage, number>;
  createdAt: Date;
}

export interface ModelDetail {
  name: string;
  createdAt: Date;
  productionVersion: string | null;
  /** Versions that were production, oldest first: what `rollback` steps back through. */
  productionHistory: string[];
  /** In registration order. */
  versions: ModelVersion[];
}

export interface ChangeOptions {
  actor: Actor;
  reason?: string;
  /** The analysis behind a promotion (an experiment's winner), kept on its audit row. */
  analysis?: unknown;
}

/** A route change: who asks, and on whose behalf (default manual). */
export interface RouteChangeOptions extends ChangeOptions {
  /** Default 'manual'. */
  owner?: RouteOwner;
  /**
   * Replace (or clear) a route that another owner's controller put in force; without it that is
   * ROUTE_OWNED (409). Audited: the audit row names the owner whose route was replaced.
   */
  force?: boolean;
}

export interface StageChange {
  model: string;
  version: string;
  stage: Stage;
  /** The version's stage before (equal to `stage` when nothing changed). */
  fromStage: Stage;
  /** The production version this change replaced (archived by it), if any. */
  replacedProduction: string | null;
  /** False when the version already had that stage: nothing was written. */
  changed: boolean;
  /** The audit row written, when changed. */
  auditId: number | null;
}

export type VersionAuditAction = 'register' | 'promote' | 'rollback';
export type RouteAuditAction = 'route_set' | 'route_clear';
export type AuditAction = VersionAuditAction | RouteAuditAction;
export const AUDIT_ACTIONS: readonly AuditAction[] = ['register', 'promote', 'rollback', 'route_set', 'route_clear'];

interface AuditBase {
  id: number;
  model: string;
  actor: Actor;
  reason: string;
  at: Date;
}

/** A registration or stage change. */
export interface VersionAuditEntry extends AuditBase {
  action: VersionAuditAction;
  fromVersion: string | null;
  toVersion: string;
  fromStage: Stage | null;
  toStage: Stage;
  /** The experiment analysis that chose this version (promotions by an experiment only). */
  analysis?: unknown;
}

/** A route put in force (`route_set`, with the route) or removed (`route_clear`, route null). */
export interface RouteAuditEntry<A extends RouteAuditAction = RouteAuditAction> extends AuditBase {
  action: A;
  fromVersion: null;
  toVersion: null;
  fromStage: null;
  toStage: null;
  route: RouteJson | null;
  routeGeneration: number;
  /** On whose behalf the change was made (for a set, the owner of the route put in force). */
  routeOwner: RouteOwner;
  /** The owner of the route a forced change replaced (null: no force was needed). */
  forcedOver: RouteOwner | null;
}

/** One member per route action, so that `action === 'route_set' || ...` narrows (unit discriminants). */
export type AuditEntry = VersionAuditEntry | RouteAuditEntry<'route_set'> | RouteAuditEntry<'route_clear'>;

export interface AuditQuery {
  model?: string;
  action?: AuditAction;
  /** Only rows with a smaller id (paging backwards). */
  beforeId?: number;
  /** Newest first by default. */
  order?: 'desc' | 'asc';
  /** At most this many (default 100, max 10,000). */
  limit?: number;
}

export interface PerformanceInput {
  predictionCount: number;
  p50Ms?: number;
  p95Ms?: number;
  p99Ms?: number;
  /** Failed / all, in [0, 1]. */
  errorRate?: number;
  cpuPercent?: number;
  memoryBytes?: number;
  extra?: Record<string, unknown>;
  /** When it was measured (default now). */
  at?: Date;
}

export interface PerformanceSnapshot {
  id: number;
  model: string;
  version: string;
  predictionCount: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  errorRate: number | null;
  cpuPercent: number | null;
  memoryBytes: number | null;
  extra: Record<string, unknown>;
  at: Date;
}

/** The payload of a NOTIFY on REGISTRY_CHANNEL after every production change. */
export interface ProductionChange {
  model: string;
  version: string;
}

/**
 * The payload of a NOTIFY on REGISTRY_CHANNEL after every route change: `route` is the route's
 * new generation. A watcher that predates routes reads only `model` and re-checks that model's
 * production version, which is harmless.
 */
export interface RouteNotice {
  model: string;
  route: number;
}

/** A model's route as stored. */
export interface RouteRecord {
  spec: RouteSpec;
  /** Who put it in force. */
  owner: RouteOwner;
  /** Bumped by every set and clear of this model's route (1 for the first). */
  generation: number;
  updatedBy: Actor;
  updatedAt: Date;
}

/** What setRoute / clearRoute did. */
export interface RouteChange {
  model: string;
  /** The route in force afterwards (null: none, the model serves its production version). */
  route: RouteSpec | null;
  /** The owner of the route in force afterwards (null when there is none). */
  owner: RouteOwner | null;
  /** Its generation (0 when the model never had a route). */
  generation: number;
  /** False when the route in force was already that (nothing was written). */
  changed: boolean;
  /** The audit row written, when changed. */
  auditId: number | null;
  /** The owner of the route this change replaced with `force` (null when none was needed). */
  forcedOver: RouteOwner | null;
}

export const REGISTRY_CHANNEL = 'sluice_registry';
