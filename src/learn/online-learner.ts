/**
 * What the control plane's learner registry (learners.ts) holds for a version learned online,
 * whatever its kind: bandits (bandit-learner.ts) and online logistic regression
 * (logistic-learner.ts). Each owns the state cell its version's runtimes read on every thread.
 */
import type { Manifest } from '../model/manifest.js';
import type { JoinedFeedback } from './feedback.js';
import type { StateCell } from './state-cell.js';

export interface LearnerCounters {
  updates: number;
  events: number;
  /** Events dropped with a rejected update, by reason. */
  rejected: Map<string, number>;
  /** Feedback for this version that could not be used (no context of the right size, no arm). */
  unusable: number;
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
