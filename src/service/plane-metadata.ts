/**
 * What one I/O thread's data plane says about its versions (OIP metadata and config, Triton-style
 * statistics): read-only views of plane-versions.ts's entries, kept apart from the request path.
 */
import type { ModelConfig, ModelMetadata, VersionStats } from './types.js';
import { PLATFORM } from './plane-types.js';
import type { LoadedVersion, ModelEntry } from './plane-versions.js';

export function metadataOf(m: ModelEntry, v: LoadedVersion): ModelMetadata {
  return {
    name: m.name,
    versions: [...m.versions.keys()],
    platform: PLATFORM[v.manifest.kind],
    inputs: v.manifest.signature.inputs,
    outputs: v.manifest.signature.outputs,
  };
}

export function configOf(name: string, v: LoadedVersion): ModelConfig {
  const b = v.manifest.batching;
  return {
    name,
    version: v.manifest.version,
    platform: PLATFORM[v.manifest.kind],
    kind: v.manifest.kind,
    maxBatchSize: b.maxBatchSize,
    maxQueueDelayUs: b.maxQueueDelayUs,
    maxQueueSize: b.maxQueueSize,
    dispatch: v.dispatch,
    inputs: v.manifest.signature.inputs,
    outputs: v.manifest.signature.outputs,
  };
}

/** This thread's counters of every serving version of a model (the engine sums the threads'). */
export function statsOf(m: ModelEntry): VersionStats[] {
  return [...m.versions.values()].map((v) => ({
    version: v.manifest.version,
    success: v.metrics.success,
    failure: v.metrics.failure,
    rows: v.metrics.rows,
    executions: v.metrics.executions,
    overloaded: v.batcher?.stats.overloaded ?? 0,
    expired: v.batcher?.stats.expired ?? 0,
  }));
}
