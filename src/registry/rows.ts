/**
 * Database rows to registry types. Both drivers return jsonb as parsed JSON and timestamptz as
 * Dates; bigint comes back as a string from `pg` and a number from PGlite, hence `num`.
 */
import type { ModelKind, Signature } from '../model/manifest.js';
import type { RouteJson, RouteOwner } from '../routing/route.js';
import type { AuditEntry, ModelVersion, PerformanceSnapshot, RouteAuditAction, Stage, VersionAuditAction } from './types.js';

export function num(v: unknown): number {
  return typeof v === 'number' ? v : Number(v);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function date(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}

export const VERSION_COLUMNS = `model, version, kind, stage, signature, manifest, artifact_key, artifact_file, size_bytes,
  sha256, training_config, hyperparameters, metrics, cv_scores, tags, notes, parent_version, created_by, created_at,
  stage_changed_at`;

export function toModelVersion(r: Record<string, unknown>): ModelVersion {
  return {
    model: r.model as string,
    version: r.version as string,
    kind: r.kind as ModelKind,
    stage: r.stage as Stage,
    signature: r.signature as Signature,
    manifest: r.manifest as Record<string, unknown>,
    artifact: { key: r.artifact_key as string, file: r.artifact_file as string, size: num(r.size_bytes), sha256: r.sha256 as string },
    trainingConfig: r.training_config as Record<string, unknown>,
    hyperparameters: r.hyperparameters as Record<string, unknown>,
    metrics: r.metrics as Record<string, unknown>,
    cvScores: r.cv_scores as number[],
    tags: r.tags as string[],
    notes: r.notes as string,
    parentVersion: (r.parent_version as string | null) ?? null,
    createdBy: r.created_by as string,
    createdAt: date(r.created_at),
    stageChangedAt: date(r.stage_changed_at),
  };
}

export const AUDIT_COLUMNS = 'id, model, action, from_version, to_version, from_stage, to_stage, actor, reason, at, route, route_generation, route_owner, route_forced_over, analysis';

export function toAuditEntry(r: Record<string, unknown>): AuditEntry {
  const base = { id: num(r.id), model: r.model as string, actor: r.actor as string, reason: r.reason as string, at: date(r.at) };
  if (r.action === 'route_set' || r.action === 'route_clear') {
    return {
      ...base,
      action: r.action as RouteAuditAction,
      fromVersion: null, toVersion: null, fromStage: null, toStage: null,
      route: (r.route as RouteJson | null) ?? null,
      routeGeneration: num(r.route_generation),
      // NULL only on rows written before migration 005, when every route change was manual.
      routeOwner: (r.route_owner as RouteOwner | null) ?? 'manual',
      forcedOver: (r.route_forced_over as RouteOwner | null) ?? null,
    };
  }
  return {
    ...base,
    action: r.action as VersionAuditAction,
    fromVersion: (r.from_version as string | null) ?? null,
    toVersion: r.to_version as string,
    fromStage: (r.from_stage as Stage | null) ?? null,
    toStage: r.to_stage as Stage,
    ...(r.analysis != null ? { analysis: r.analysis } : {}),
  };
}

export const PERFORMANCE_COLUMNS = 'id, model, version, prediction_count, p50_ms, p95_ms, p99_ms, error_rate, cpu_percent, memory_bytes, extra, at';

export function toPerformance(r: Record<string, unknown>): PerformanceSnapshot {
  return {
    id: num(r.id),
    model: r.model as string,
    version: r.version as string,
    predictionCount: num(r.prediction_count),
    p50Ms: numOrNull(r.p50_ms),
    p95Ms: numOrNull(r.p95_ms),
    p99Ms: numOrNull(r.p99_ms),
    errorRate: numOrNull(r.error_rate),
    cpuPercent: numOrNull(r.cpu_percent),
    memoryBytes: numOrNull(r.memory_bytes),
    extra: r.extra as Record<string, unknown>,
    at: date(r.at),
  };
}
