import type { DriftBatch } from '../analyze/drift-sampler.js';
import type { MetricsSnapshot } from '../metrics/snapshot.js';
import type { WindowSnapshot } from '../metrics/windows.js';
import type { PublishedRoute } from '../routing/plane-route.js';
import type { ShadowSnapshot } from '../routing/shadow.js';
import type { ActivateOptions, VersionSpec } from './plane-types.js';

/**
 * The control plane's handle on one data plane: the main thread's (called directly) or an I/O
 * thread's (messages over its port, src/io/plane-link.ts). Each call resolves when that plane
 * has done it.
 */
export interface PlaneLink {
  readonly thread: number;
  install(spec: VersionSpec): Promise<void>;
  activate(model: string, gen: number, opts: ActivateOptions): Promise<void>;
  retireVersions(model: string, gens: number[]): Promise<void>;
  installRoute(model: string, route: PublishedRoute): Promise<void>;
  routeStored(model: string, gen: number): Promise<void>;
  shadowSnapshots(model: string): Promise<ShadowSnapshot[]>;
  unload(model: string): Promise<void>;
  discard(model: string, gen: number): Promise<void>;
  markStarted(models: string[]): Promise<void>;
  snapshot(): Promise<MetricsSnapshot>;
  /** That plane's window of a version over [fromMs, toMs]; undefined when it has no metrics for it. */
  windowSnapshot(model: string, version: string, fromMs: number, toMs: number): Promise<WindowSnapshot | undefined>;
  /** That plane's drift samples since the last call (each plane hands each sample over once). */
  driftSamples(): Promise<DriftBatch[]>;
  /** Pool threads died: fail this plane's batches that they were running. */
  reap(alive: number[]): void;
}
