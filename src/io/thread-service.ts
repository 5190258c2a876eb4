/**
 * The service an I/O thread's front ends call (src/service/service.ts): this thread's data
 * plane for the request path, the control plane (by message) for whole-server operations:
 * merged metrics, the repository index, load and unload.
 */
import { mergeSnapshots, snapshotMetrics, type MetricsSnapshot } from '../metrics/snapshot.js';
import type { Metrics } from '../metrics/version-metrics.js';
import type { DataPlane } from '../service/data-plane.js';
import type { Service } from '../service/service.js';
import { PlaneService } from '../service/plane-service.js';
import type { RepositoryModel } from '../service/types.js';
import type { FeedbackInput, FeedbackOutcome } from '../learn/feedback.js';
import type { Rpc } from './rpc.js';
import type { LoadOptions } from '../service/engine.js';

export class ThreadService extends PlaneService implements Service {
  private extraLines: () => string[] = () => [];

  constructor(plane: DataPlane, private readonly control: Rpc, readonly poolThreads: number) {
    super(plane);
  }

  setExtraLines(lines: () => string[]): void {
    this.extraLines = lines;
  }

  /** This thread's figures, for the control plane to gather. */
  snapshot(): MetricsSnapshot {
    return snapshotMetrics(this.plane.metrics, this.plane.thread, [...this.extraLines(), ...this.plane.threadLines()]);
  }

  async wholeMetrics(): Promise<{ metrics: Metrics; lines: string[] }> {
    return mergeSnapshots(await this.control.call<MetricsSnapshot[]>('snapshots'));
  }

  repositoryIndex(): Promise<RepositoryModel[]> {
    return this.control.call('repositoryIndex');
  }

  load(name: string, opts?: LoadOptions): Promise<string> {
    return this.control.call('load', name, opts ?? {});
  }

  unload(name: string, opts?: { version?: string }): Promise<void> {
    return this.control.call('unload', name, opts ?? {});
  }

  shadowReport(name: string): ReturnType<Service['shadowReport']> {
    return this.control.call('shadowReport', name);
  }

  /** Feedback is stored by the main thread's intake (one group commit and one local log per process). */
  feedback(items: FeedbackInput[]): Promise<FeedbackOutcome[]> {
    return this.control.call('feedback', items);
  }
}
