/**
 * What the front ends call: one transport-agnostic service per I/O thread. The main thread's is
 * the Engine (control plane plus its data plane); another I/O thread's is its ThreadService
 * (its own data plane, and the control plane reached by message for whole-server operations).
 * Synchronous methods are answered by this thread's data plane alone (the hot path never waits
 * for another thread); the promises may cross to the control plane.
 */
import type { Config } from '../config/index.js';
import type { TensorSpec } from '../model/manifest.js';
import type { Metrics } from '../metrics/version-metrics.js';
import type { FeedbackInput, FeedbackOutcome } from '../learn/feedback.js';
import type { Admission } from './admission.js';
import type { InferRequest, InferResponse, ModelConfig, ModelMetadata, RepositoryModel } from './types.js';

export interface Service {
  readonly config: Readonly<Config>;
  /** This thread's metrics: where front ends count errors. */
  readonly metrics: Metrics;
  /** This thread's admission control. */
  readonly admission: Admission;
  readonly poolThreads: number;
  live(): boolean;
  ready(): boolean;
  modelReady(name: string, version?: string): boolean;
  checkTarget(model: string, version: string | undefined): void;
  infer(req: InferRequest): Promise<InferResponse>;
  inferNow(req: InferRequest): InferResponse | Promise<InferResponse>;
  modelMetadata(name: string, version?: string): ModelMetadata;
  inputSpecs(name: string, version?: string): readonly TensorSpec[];
  modelConfig(name: string, version?: string): ModelConfig;
  /** Every I/O thread's metrics merged, and the front ends' extra /metrics lines summed. */
  wholeMetrics(): Promise<{ metrics: Metrics; lines: string[] }>;
  /** Lines this thread's front end adds to /metrics (HTTP counters, admission). */
  setExtraLines(lines: () => string[]): void;
  repositoryIndex(): Promise<RepositoryModel[]>;
  /** Loads a version: the default (a swap) unless `asDefault` is false (a live version beside it). */
  load(name: string, opts?: { version?: string; asDefault?: boolean }): Promise<string>;
  /** Unloads a model, or only one live version of it. */
  unload(name: string, opts?: { version?: string }): Promise<void>;
  /** The shadow report of a model (every I/O thread's figures merged). */
  shadowReport(name: string): Promise<{ model: string; route_generation: number; shadows: Array<Record<string, unknown>> }>;
  /**
   * Stores feedback events (src/learn/feedback-intake.ts, on the main thread): one outcome per
   * event, each answered once its event is durable or refused.
   */
  feedback(items: FeedbackInput[]): Promise<FeedbackOutcome[]>;
}
