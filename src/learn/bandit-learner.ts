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
import type { Manifest } from '../model/manifest.js';
import { isLinear, parseBanditConfig, type BanditConfig } from './bandit/config.js';
import { armCounts, layoutOf } from './bandit/layout.js';
import { applyBatch, batchFit, batchProblem, rebuildInverse, stateFinite, type BanditBatch } from './bandit/update.js';
import type { JoinedFeedback } from './feedback.js';
import { StateCell } from './state-cell.js';
import { QueuedLearner, type LearnedSnapshot } from './online-learner.js';

/** The stability monitor's judgement of one update (src/learn/stability.ts). */
export type Verdict = { ok: true } | { ok: false; reason: string; detail: string };

export interface UpdateJudge {
  check(u: { loss: number; gradNorm: number }): Verdict;
}

/** Rebuild the linear families' A^-1 from A every this many updates (rank-one drift). */
const RESYNC_EVERY = 1000;

export class BanditLearner extends QueuedLearner {
  readonly additive = true;
  readonly config: BanditConfig;
  readonly cell: StateCell;
  /** The learner's own copy: applied batches land here, then it is published. */
  private readonly work: Float64Array;
  /** Batches applied since the last publication (to redo them over it if one goes bad). */
  private sincePublished: BanditBatch[] = [];
  private readonly batch: BanditBatch;
  /**
   * Rewards learned per arm, summed, since this learner started (this process's applied
   * feedback: the linear families' state holds sum r x, not sum r, so it is tallied here).
   */
  private readonly rewardSums: Float64Array;

  constructor(manifest: Manifest, private readonly judge: UpdateJudge, start: LearnedSnapshot) {
    const config = parseBanditConfig(manifest);
    super(manifest, config.learning);
    this.config = config;
    const length = layoutOf(config).length;
    if (start.state.length !== length) throw new SluiceError('INTERNAL', `${manifest.name}@${manifest.version}: learned state has ${start.state.length} values, the model needs ${length}`);
    this.cell = new StateCell(length);
    this.work = Float64Array.from(start.state);
    this.counters.updates = start.updates;
    this.counters.events = start.events;
    this.cell.publish(this.work, start.updates, start.events);
    const n = config.learning.batchSize;
    this.batch = { n: 0, arms: new Uint32Array(n), x: new Float32Array(n * config.dims), rewards: new Float64Array(n) };
    this.rewardSums = new Float64Array(config.arms);
  }

  protected usable(f: JoinedFeedback): boolean {
    const d = f.decision;
    return d.action !== undefined && d.features !== undefined && d.features.length === this.config.dims;
  }

  /**
   * Per arm: feedback events in the published state (every replica's, merged, and restored
   * from checkpoints) and the rewards this learner applied since it started, summed.
   */
  arms(): { feedback: number[]; rewardSums: number[] } {
    const counts = new Float64Array(this.config.arms);
    armCounts(this.config, this.cell.read().data, counts);
    return { feedback: [...counts], rewardSums: [...this.rewardSums] };
  }

  /** The state as last published (what serving sees). */
  snapshot(): LearnedSnapshot {
    const v = this.cell.read();
    return { state: Float64Array.from(v.data), updates: v.state, events: v.events };
  }

  protected applyBatch(todo: JoinedFeedback[], from: number, to: number): number {
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
    for (let i = 0; i < b.n; i++) this.rewardSums[b.arms[i]!]! += b.rewards[i]!;
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

  protected publish(): void {
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
