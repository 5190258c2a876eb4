/**
 * The online learner of one bandit version (control plane, main thread). Joined feedback
 * (feedback-intake.ts) is queued as it is acknowledged; every `interval_ms` the queue is applied
 * in mini-batches of at most `batch_size` and the new state is published once through the
 * version's state cell: serving never waits on learning, and every answer carries the `state`
 * (updates applied) that computed it.
 *
 * Each mini-batch is judged before it is applied: non-finite values or rewards outside the
 * model's range, and a loss or gradient norm the stability monitor finds far out of line, reject
 * it whole; the state stays the last good one, and a metric and a log line say why. An update
 * that would leave a non-finite value is undone from the last published state plus the batches
 * applied since (kept until the next publication), so no good batch is lost with a bad one.
 */
import { SluiceError } from '../errors.js';
import { log } from '../log.js';
import { RateLimited } from './metric-lines.js';
import type { Manifest } from '../model/manifest.js';
import { isLinear, parseBanditConfig, type BanditConfig } from './bandit/config.js';
import { layoutOf } from './bandit/layout.js';
import { applyBatch, batchFit, batchProblem, rebuildInverse, stateFinite, type BanditBatch } from './bandit/update.js';
import type { JoinedFeedback } from './feedback.js';
import { StateCell } from './state-cell.js';
import type { LearnedSnapshot, LearnerCounters, OnlineLearner } from './online-learner.js';

/** The stability monitor's judgement of one update (src/learn/stability.ts). */
export type Verdict = { ok: true } | { ok: false; reason: string; detail: string };

export interface UpdateJudge {
  check(u: { loss: number; gradNorm: number }): Verdict;
}

/** Rebuild the linear families' A^-1 from A every this many updates (rank-one drift). */
const RESYNC_EVERY = 1000;

export class BanditLearner implements OnlineLearner {
  readonly additive = true;
  readonly config: BanditConfig;
  readonly cell: StateCell;
  readonly counters: LearnerCounters = { updates: 0, events: 0, rejected: new Map(), unusable: 0 };
  /** The learner's own copy: applied batches land here, then it is published. */
  private readonly work: Float64Array;
  private queue: JoinedFeedback[] = [];
  /** Batches applied since the last publication (to redo them over it if one goes bad). */
  private sincePublished: BanditBatch[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly batch: BanditBatch;
  private readonly warn = new RateLimited(10_000);
  /** Called after each publication (checkpoints and replicas watch the learner through it). */
  onPublished: (() => void) | undefined;

  constructor(readonly manifest: Manifest, private readonly judge: UpdateJudge, start: LearnedSnapshot) {
    this.config = parseBanditConfig(manifest);
    const length = layoutOf(this.config).length;
    if (start.state.length !== length) throw new SluiceError('INTERNAL', `${manifest.name}@${manifest.version}: learned state has ${start.state.length} values, the model needs ${length}`);
    this.cell = new StateCell(length);
    this.work = Float64Array.from(start.state);
    this.counters.updates = start.updates;
    this.counters.events = start.events;
    this.cell.publish(this.work, start.updates, start.events);
    const n = this.config.learning.batchSize;
    this.batch = { n: 0, arms: new Uint32Array(n), x: new Float32Array(n * this.config.dims), rewards: new Float64Array(n) };
  }

  get name(): string {
    return this.manifest.name;
  }

  get version(): string {
    return this.manifest.version;
  }

  /** Starts applying queued feedback every interval_ms. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flush(), this.config.learning.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Queues one joined feedback event of this version (the intake's subscriber calls it). */
  offer(f: JoinedFeedback): void {
    const d = f.decision;
    if (d.action === undefined || d.features === undefined || d.features.length !== this.config.dims) {
      this.counters.unusable++;
      return;
    }
    this.queue.push(f);
  }

  /** Events queued and not yet applied. */
  get queued(): number {
    return this.queue.length;
  }

  /** The state as last published (what serving sees). */
  snapshot(): LearnedSnapshot {
    const v = this.cell.read();
    return { state: Float64Array.from(v.data), updates: v.state, events: v.events };
  }

  /**
   * Applies everything queued, in mini-batches, and publishes the result once. Returns events
   * applied. Synchronous: it runs on the control plane between its other work.
   */
  flush(): number {
    if (this.queue.length === 0) return 0;
    const todo = this.queue;
    this.queue = [];
    const size = this.config.learning.batchSize;
    let applied = 0;
    for (let i = 0; i < todo.length; i += size) applied += this.applyOne(todo, i, Math.min(todo.length, i + size));
    if (applied > 0) this.publish();
    return applied;
  }

  private applyOne(todo: JoinedFeedback[], from: number, to: number): number {
    const b = this.batch;
    const d = this.config.dims;
    b.n = to - from;
    for (let i = 0; i < b.n; i++) {
      const f = todo[from + i]!;
      b.arms[i] = f.decision.action!;
      b.rewards[i] = f.reward;
      b.x.set(f.decision.features!, i * d);
    }
    const problem = batchProblem(this.config, b);
    if (problem !== undefined) return this.reject(b.n, 'invalid_input', problem);
    const fit = batchFit(this.config, this.work, b);
    const verdict = this.judge.check(fit);
    if (!verdict.ok) return this.reject(b.n, verdict.reason, verdict.detail);
    applyBatch(this.config, this.work, b);
    if (!stateFinite(this.work)) {
      this.redo();
      return this.reject(b.n, 'non_finite', 'the update left a non-finite value in the state');
    }
    this.sincePublished.push(copyBatch(b, d));
    this.counters.updates++;
    this.counters.events += b.n;
    if (isLinear(this.config) && this.counters.updates % RESYNC_EVERY === 0) rebuildInverse(this.config, this.work);
    return b.n;
  }

  /** Back to the last published state, then the good batches applied since. */
  private redo(): void {
    this.work.set(this.cell.read().data);
    for (const b of this.sincePublished) applyBatch(this.config, this.work, b);
  }

  private reject(n: number, reason: string, detail: string): number {
    this.counters.rejected.set(reason, (this.counters.rejected.get(reason) ?? 0) + n);
    if (this.warn.ready()) log.warn('learner: update rejected, serving stays on the last good state', { model: this.name, version: this.version, reason, detail, events: n });
    return 0;
  }

  private publish(): void {
    this.cell.publish(this.work, this.counters.updates, this.counters.events);
    this.sincePublished = [];
    this.onPublished?.();
  }

  /**
   * Adds another replica's delta (additive part) and publishes. A merge that breaks the state
   * (a non positive-definite A) is refused and the state stays as it was.
   */
  merge(apply: (state: Float64Array) => boolean, events: number): boolean {
    const before = Float64Array.from(this.work);
    if (!apply(this.work) || !stateFinite(this.work)) {
      this.work.set(before);
      this.reject(events, 'bad_delta', 'a replica delta left the state unusable');
      return false;
    }
    this.counters.events += events;
    this.counters.updates++;
    this.publish();
    return true;
  }
}

function copyBatch(b: BanditBatch, d: number): BanditBatch {
  return { n: b.n, arms: b.arms.slice(0, b.n), x: b.x.slice(0, b.n * d), rewards: b.rewards.slice(0, b.n) };
}
