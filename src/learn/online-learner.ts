/**
 * What the control plane's learner registry (learners.ts) holds for a version learned online,
 * whatever its kind: bandits (bandit-learner.ts) and online logistic regression
 * (logistic-learner.ts). Each owns the state cell its version's runtimes read on every thread.
 */
import { log } from '../log.js';
import type { Manifest } from '../model/manifest.js';
import type { LearningConfig } from './bandit/config.js';
import type { JoinedFeedback } from './feedback.js';
import { RateLimited } from './metric-lines.js';
import type { StateCell } from './state-cell.js';

export interface LearnerCounters {
  updates: number;
  events: number;
  /** Events dropped with a rejected update, by reason. */
  rejected: Map<string, number>;
  /** Feedback for this version that could not be used (no context of the right size, no arm). */
  unusable: number;
  /** When the stability checks last rejected an update (ms since the epoch; null: never). */
  lastRejectedAt: number | null;
}

/** A learner's whole state at a point (for checkpoints): its values as doubles, and counters. */
export interface LearnedSnapshot {
  state: Float64Array;
  updates: number;
  events: number;
}

export interface OnlineLearner {
  readonly manifest: Manifest;
  readonly cell: StateCell;
  readonly counters: LearnerCounters;
  readonly name: string;
  readonly version: string;
  /** Events queued, not yet applied. */
  readonly queued: number;
  /** Whether other replicas' deltas can be added to its state (bandits: sufficient statistics). */
  readonly additive: boolean;
  /** Called after each publication. */
  onPublished: (() => void) | undefined;
  offer(f: JoinedFeedback): void;
  /** Applies what is queued and publishes; returns events applied. */
  flush(): number;
  start(): void;
  stop(): void;
  snapshot(): LearnedSnapshot;
}

/**
 * What every learner does the same way: queue the feedback it can use, every `interval_ms`
 * apply what is queued in mini-batches of `batch_size` (`applyBatch`, one judged update each),
 * publish once if any applied, and count and log the batches it rejects.
 */
export abstract class QueuedLearner implements OnlineLearner {
  abstract readonly additive: boolean;
  abstract readonly cell: StateCell;
  readonly counters: LearnerCounters = { updates: 0, events: 0, rejected: new Map(), unusable: 0, lastRejectedAt: null };
  onPublished: (() => void) | undefined;
  private queue: JoinedFeedback[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly warn = new RateLimited(10_000);

  constructor(readonly manifest: Manifest, private readonly learning: LearningConfig) {}

  get name(): string {
    return this.manifest.name;
  }

  get version(): string {
    return this.manifest.version;
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Starts applying queued feedback every interval_ms. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.flush(), this.learning.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Queues one joined feedback event of this version (the intake's subscriber calls it). */
  offer(f: JoinedFeedback): void {
    if (!this.usable(f)) {
      this.counters.unusable++;
      return;
    }
    this.queue.push(f);
  }

  /**
   * Applies everything queued, in mini-batches, and publishes the result once. Returns events
   * applied. Synchronous: it runs on the control plane between its other work.
   */
  flush(): number {
    if (this.queue.length === 0) return 0;
    const todo = this.queue;
    this.queue = [];
    const size = this.learning.batchSize;
    let applied = 0;
    for (let i = 0; i < todo.length; i += size) applied += this.applyBatch(todo, i, Math.min(todo.length, i + size));
    if (applied > 0) this.publish();
    return applied;
  }

  abstract snapshot(): LearnedSnapshot;

  /** Whether the learner can use this event (a context of the right size, an arm if it needs one). */
  protected abstract usable(f: JoinedFeedback): boolean;

  /** Judges and applies todo[from, to) as one update; returns events applied (0: rejected). */
  protected abstract applyBatch(todo: JoinedFeedback[], from: number, to: number): number;

  /** Publishes the current state through the cell, then calls onPublished. */
  protected abstract publish(): void;

  /** Counts a rejected update's events by reason, logs it (rate-limited); returns 0 applied. */
  protected reject(n: number, reason: string, detail: string): number {
    this.counters.rejected.set(reason, (this.counters.rejected.get(reason) ?? 0) + n);
    this.counters.lastRejectedAt = Date.now();
    if (this.warn.ready()) log.warn('learner: update rejected, serving stays on the last good state', { model: this.name, version: this.version, reason, detail, events: n });
    return 0;
  }
}
