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
import { log } from '../log.js';
import type { Manifest } from '../model/manifest.js';
import { parseLearning, type LearningConfig } from './bandit/config.js';
import type { JoinedFeedback } from './feedback.js';
import { RateLimited } from './metric-lines.js';
import { OnlineLogistic, parseSgdOptions } from './online-logistic.js';
import type { LearnedSnapshot, LearnerCounters, OnlineLearner } from './online-learner.js';
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

export class LogisticLearner implements OnlineLearner {
  readonly additive = false;
  readonly cell: StateCell;
  readonly counters: LearnerCounters = { updates: 0, events: 0, rejected: new Map(), unusable: 0 };
  onPublished: (() => void) | undefined;
  private readonly model: OnlineLogistic;
  private readonly monitor: StabilityMonitor;
  private readonly dims: number;
  private readonly learning: LearningConfig;
  private readonly view: Float64Array;
  private queue: JoinedFeedback[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly warn = new RateLimited(10_000);

  /** `initial`: the payload's weights; `start`: a checkpoint (OnlineLogistic.state() as doubles). */
  constructor(readonly manifest: Manifest, initial: { weights: Float32Array; bias: number }, start?: LearnedSnapshot) {
    const { dims, learning } = parseLogisticConfig(manifest);
    this.dims = dims;
    this.learning = learning;
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

  get name(): string {
    return this.manifest.name;
  }

  get version(): string {
    return this.manifest.version;
  }

  get queued(): number {
    return this.queue.length;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flush(), this.learning.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  offer(f: JoinedFeedback): void {
    const x = f.decision.features;
    if (x === undefined || x.length !== this.dims) {
      this.counters.unusable++;
      return;
    }
    this.queue.push(f);
  }

  flush(): number {
    if (this.queue.length === 0) return 0;
    const todo = this.queue;
    this.queue = [];
    const size = this.learning.batchSize;
    const d = this.dims;
    let applied = 0;
    for (let i = 0; i < todo.length; i += size) {
      const n = Math.min(size, todo.length - i);
      const x = new Float32Array(n * d);
      const y = new Float64Array(n);
      let bad: string | undefined;
      for (let j = 0; j < n; j++) {
        const f = todo[i + j]!;
        x.set(f.decision.features!, j * d);
        y[j] = f.reward;
        if (!(f.reward >= 0 && f.reward <= 1)) bad = `label ${f.reward} outside [0, 1]`;
      }
      for (let j = 0; j < n * d && bad === undefined; j++) if (!Number.isFinite(x[j]!)) bad = `context value ${j} is not finite`;
      if (bad !== undefined) {
        this.reject(n, 'invalid_input', bad);
        continue;
      }
      const r = this.model.step(x, y, n, this.monitor);
      if (!r.applied) {
        this.reject(n, r.verdict && !r.verdict.ok ? r.verdict.reason : 'rejected', r.verdict && !r.verdict.ok ? r.verdict.detail : '');
        continue;
      }
      this.counters.updates++;
      this.counters.events += n;
      applied += n;
    }
    if (applied > 0) this.publish();
    return applied;
  }

  snapshot(): LearnedSnapshot {
    const bytes = this.model.state();
    return { state: new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8), updates: this.counters.updates, events: this.counters.events };
  }

  private reject(n: number, reason: string, detail: string): void {
    this.counters.rejected.set(reason, (this.counters.rejected.get(reason) ?? 0) + n);
    if (this.warn.ready()) log.warn('learner: update rejected, serving stays on the last good state', { model: this.name, version: this.version, reason, detail, events: n });
  }

  private publish(): void {
    this.view.set(this.model.weights());
    this.view[this.dims] = this.model.bias;
    this.cell.publish(this.view, this.counters.updates, this.counters.events);
    this.onPublished?.();
  }
}
