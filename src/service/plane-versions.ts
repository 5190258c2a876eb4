/**
 * What one I/O thread's data plane (src/service/data-plane.ts) holds per model and per version:
 * shared by the request path, its routing step (plane-routing.ts) and its read-only views
 * (plane-metadata.ts), which all run on that thread and need no lock.
 */
import type { DispatchMode, Manifest } from '../model/manifest.js';
import type { VersionMetrics } from '../metrics/version-metrics.js';
import type { Batcher } from '../dispatch/batcher.js';
import type { Runtime } from '../worker/runtimes/index.js';
import type { VersionGuard } from './resilience/guard.js';
import type { PlaneRoute } from '../routing/plane-route.js';
import type { LearnedVersion } from './decision-recorder.js';

export interface LoadedVersion {
  gen: number;
  manifest: Manifest;
  dispatch: DispatchMode;
  runtime?: Runtime;
  batcher?: Batcher;
  slots: number[];
  /** Requests holding this version (queued, running or computing inline). */
  refs: number;
  retired: boolean;
  freed: boolean;
  metrics: VersionMetrics;
  /** Fallback, circuit breaker, prediction cache: absent when the manifest has none of them. */
  guard?: VersionGuard;
  /** A learned version as the decision recorder sees it (made at its first answer). */
  learned?: LearnedVersion;
}

export interface ModelEntry {
  name: string;
  slot: number;
  /** Routes installed on this thread, by generation (the table says which is in force). */
  routes: Map<number, PlaneRoute>;
  /** False until the first activation: a model being loaded for the first time is not found. */
  announced: boolean;
  /** Live versions (the default one and any others loaded beside it), by version string. */
  versions: Map<string, LoadedVersion>;
  /** Every version not yet freed (installed, serving, standby, retired and finishing), by generation. */
  byGen: Map<number, LoadedVersion>;
  /**
   * The version the last swap replaced, kept loaded (not serving) while the active version's
   * fallback policy is `previous_version`, so that it can answer at once when the new one fails.
   */
  standby?: LoadedVersion;
}
