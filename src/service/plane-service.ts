/**
 * The part of a Service that one thread's data plane answers by itself (the hot path and
 * everything synchronous): shared by the main thread's Engine and another I/O thread's
 * ThreadService, which differ only in how they reach the control plane.
 */
import type { Config } from '../config/index.js';
import type { TensorSpec } from '../model/manifest.js';
import type { Metrics } from '../metrics/version-metrics.js';
import type { Admission } from './admission.js';
import type { DataPlane } from './data-plane.js';
import type { InferRequest, InferResponse, ModelConfig, ModelMetadata } from './types.js';

export abstract class PlaneService {
  constructor(
    /** This thread's data plane. */
    readonly plane: DataPlane,
  ) {}

  get config(): Readonly<Config> {
    return this.plane.config;
  }

  /** This thread's metrics (record, countError); `wholeMetrics` has every thread's. */
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
}
