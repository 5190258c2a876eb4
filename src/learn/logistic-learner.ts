/**
 * The online learner of an `online-logistic` version: feedback rewards are the labels (in
 * [0, 1]) of the rows the version scored; every `interval_ms` the queued events are applied by
 * SGD in mini-batches of `batch_size` (online-logistic.ts: schedule, L2, gradient clipping),
 * each judged by the stability monitor first, and the weights are published once through the
 * state cell, [w (d) | bias], that every thread's runtime reads.
 *
 * Not additive: each replica learns from the feedback it receives (no deltas between replicas).
 */
import { SluiceError } from '../errors.js';
import type { Manifest } from '../model/manifest.js';
import { parseLearning, type LearningConfig } from './bandit/config.js';
import type { JoinedFeedback } from './feedback.js';
import { OnlineLogistic, parseSgdOptions } from './online-logistic.js';
import { QueuedLearner, type LearnedSnapshot } from './online-learner.js';
import { parseStabilityOptions, StabilityMonitor } from './stability.js';
import { StateCell } from './state-cell.js';

/** Features per row of an online-logistic signature (input FP32 [-1, d], output FP32 [-1, 1]). */
export function logisticDims(m: Manifest): number {
  const x = m.signature.inputs[0];
  const y = m.signature.outputs[0];
  if (m.signature.inputs.length !== 1 || m.signature.outputs.length !== 1 || !x || !y || x.datatype !== 'FP32' || y.datatype !== 'FP32'
    || x.shape.length !== 2 || y.shape.length !== 2 || x.shape[0] !== -1 || y.shape[0] !== -1 || !(x.shape[1]! > 0) || y.shape[1] !== 1) {
    throw new SluiceError('MANIFEST_INVALID', `${m.name}@${m.version}: online-logistic models take one FP32 input [-1, d] and give one FP32 output [-1, 1]`);
  }
  return x.shape[1]!;
}

const LOGISTIC_FIELDS = ['schedule', 'l2', 'max_norm', 'learning', 'stability'];

/** Checks an online-logistic manifest's parameters (MANIFEST_INVALID); returns what the learner needs. */
export function parseLogisticConfig(m: Manifest): { dims: number; learning: LearningConfig } {
  const dims = logisticDims(m);
  for (const k of Object.keys(m.parameters)) {
    if (!LOGISTIC_FIELDS.includes(k)) throw new SluiceError('MANIFEST_INVALID', `${m.name}@${m.version}: parameters has an unknown field ${JSON.stringify(k.slice(0, 64))} (known: ${LOGISTIC_FIELDS.join(', ')})`);
  }
  parseSgdOptions(m.parameters);
  parseStabilityOptions(m.parameters.stability);
  return { dims, learning: parseLearning(m, m.parameters.learning) };
}

export class LogisticLearner extends QueuedLearner {
  readonly additive = false;
  readonly cell: StateCell;
  private readonly model: OnlineLogistic;
  private readonly monitor: StabilityMonitor;
  private readonly dims: number;
  private readonly view: Float64Array;

  /** `initial`: the payload's weights; `start`: a checkpoint (OnlineLogistic.state() as doubles). */
  constructor(manifest: Manifest, initial: { weights: Float32Array; bias: number }, start?: LearnedSnapshot) {
    const { dims, learning } = parseLogisticConfig(manifest);
    super(manifest, learning);
    this.dims = dims;
    this.model = new OnlineLogistic({ dim: dims, ...parseSgdOptions(manifest.parameters) }, { weights: initial.weights, bias: initial.bias });
    this.monitor = new StabilityMonitor(parseStabilityOptions(manifest.parameters.stability));
    if (start && start.state.length > 0) {
      this.model.restore(new Uint8Array(start.state.buffer, start.state.byteOffset, start.state.byteLength));
      this.counters.updates = start.updates;
      this.counters.events = start.events;
    }
    this.cell = new StateCell(dims + 1);
    this.view = new Float64Array(dims + 1);
    this.publish();
  }

  protected usable(f: JoinedFeedback): boolean {
    const x = f.decision.features;
    return x !== undefined && x.length === this.dims;
  }

  protected applyBatch(todo: JoinedFeedback[], from: number, to: number): number {
    const n = to - from;
    const d = this.dims;
    const x = new Float32Array(n * d);
    const y = new Float64Array(n);
    let bad: string | undefined;
    for (let j = 0; j < n; j++) {
      const f = todo[from + j]!;
      x.set(f.decision.features!, j * d);
      y[j] = f.reward;
      if (!(f.reward >= 0 && f.reward <= 1)) bad = `label ${f.reward} outside [0, 1]`;
    }
    for (let j = 0; j < n * d && bad === undefined; j++) if (!Number.isFinite(x[j]!)) bad = `context value ${j} is not finite`;
    if (bad !== undefined) return this.reject(n, 'invalid_input', bad);
    const r = this.model.step(x, y, n, this.monitor);
    if (!r.applied) return this.reject(n, r.verdict && !r.verdict.ok ? r.verdict.reason : 'rejected', r.verdict && !r.verdict.ok ? r.verdict.detail : '');
    this.counters.updates++;
    this.counters.events += n;
    return n;
  }

  snapshot(): LearnedSnapshot {
    const bytes = this.model.state();
    return { state: new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8), updates: this.counters.updates, events: this.counters.events };
  }

  protected publish(): void {
    this.view.set(this.model.weights());
    this.view[this.dims] = this.model.bias;
    this.cell.publish(this.view, this.counters.updates, this.counters.events);
    this.onPublished?.();
  }
}
