/**
 * The service an I/O thread's front ends call (src/service/service.ts): this thread's data
 * plane for the request path, the control plane (by message) for whole-server operations:
 * merged metrics, the repository index, load and unload.
 */
import type { Config } from '../config/index.js';
import type { TensorSpec } from '../model/manifest.js';
import { mergeSnapshots, snapshotMetrics, type MetricsSnapshot } from '../metrics/snapshot.js';
import type { Metrics } from '../metrics/version-metrics.js';
import type { Admission } from '../service/admission.js';
import type { DataPlane } from '../service/data-plane.js';
import type { Service } from '../service/service.js';
import type { InferRequest, InferResponse, ModelConfig, ModelMetadata, RepositoryModel } from '../service/types.js';
import type { Rpc } from './rpc.js';

export class ThreadService implements Service {
  private extraLines: () => string[] = () => [];

  constructor(readonly plane: DataPlane, private readonly control: Rpc, readonly poolThreads: number) {}

  get config(): Readonly<Config> {
    return this.plane.config;
  }

  get metrics(): Metrics {
    return this.plane.metrics;
  }

  get admission(): Admission {
    return this.plane.admission;
  }

  live(): boolean {
    return this.plane.live();
  }

  ready(): boolean {
    return this.plane.ready();
  }

  modelReady(name: string, version?: string): boolean {
    return this.plane.modelReady(name, version);
  }

  checkTarget(model: string, version: string | undefined): void {
    this.plane.checkTarget(model, version);
  }

  infer(req: InferRequest): Promise<InferResponse> {
    return this.plane.infer(req);
  }

  inferNow(req: InferRequest): InferResponse | Promise<InferResponse> {
    return this.plane.inferNow(req);
  }

  modelMetadata(name: string, version?: string): ModelMetadata {
    return this.plane.modelMetadata(name, version);
  }

  inputSpecs(name: string, version?: string): readonly TensorSpec[] {
    return this.plane.inputSpecs(name, version);
  }

  modelConfig(name: string, version?: string): ModelConfig {
    return this.plane.modelConfig(name, version);
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

  load(name: string, opts?: { version?: string }): Promise<string> {
    return this.control.call('load', name, opts ?? {});
  }

  unload(name: string): Promise<void> {
    return this.control.call('unload', name);
  }
}
