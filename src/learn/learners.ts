/**
 * The control plane's online learners, one per live (model, version) learned online, fed by the
 * feedback intake's joined events. A version reloaded (a new generation of the same version)
 * keeps its learner and state: learning is per version, not per load.
 */
import type { Manifest } from '../model/manifest.js';
import { logisticStart } from '../worker/runtimes/online-logistic.js';
import { BanditLearner, type UpdateJudge } from './bandit-learner.js';
import { parseBanditConfig } from './bandit/config.js';
import { initialState } from './bandit/layout.js';
import type { JoinedFeedback } from './feedback.js';
import { LogisticLearner } from './logistic-learner.js';
import { family } from '../metrics/families.js';
import type { LearnedSnapshot, OnlineLearner } from './online-learner.js';
import { parseStabilityOptions, StabilityMonitor } from './stability.js';

/** No parameters to check: the learner checks its state itself after applying (bandit-learner.ts). */
const NO_PARAMS = new Float64Array(0);

/**
 * The stability monitor (stability.ts) of `m`'s learner, from its `parameters.stability`
 * (defaults: 10 x the running median of the last 100 accepted updates, ADWIN on the loss).
 */
export function defaultJudge(m: Manifest): UpdateJudge {
  const monitor = new StabilityMonitor(parseStabilityOptions(m.parameters.stability));
  return { check: (u) => monitor.judge({ loss: u.loss, gradNorm: u.gradNorm, params: NO_PARAMS }) };
}

interface Entry {
  learner: OnlineLearner;
  /** Loaded generations using it. */
  refs: number;
}

export interface LearnersOptions {
  /** A stability monitor per bandit learner. */
  judge: (m: Manifest) => UpdateJudge;
  /** Where a new learner starts (a checkpoint); undefined: the prior (or the payload's weights). */
  restore?: (m: Manifest) => Promise<LearnedSnapshot | undefined>;
  /** A learner starts (sync with replicas, periodic checkpoints). */
  started?: (l: OnlineLearner) => void;
  /** A learner is retired (its version unloaded, or shutdown): the last chance to save it. */
  retired?: (l: OnlineLearner) => Promise<void>;
}

function key(model: string, version: string): string {
  return model + '\u0000' + version;
}

export class Learners {
  private readonly byKey = new Map<string, Entry>();

  constructor(private readonly opts: LearnersOptions) {}

  /** The subscriber to give the feedback intake. */
  readonly offer = (f: JoinedFeedback): void => {
    this.byKey.get(key(f.decision.model, f.decision.version))?.learner.offer(f);
  };

  /** The learner of `m`'s version (created, restored and started on first use); `payload` is its artifact. */
  async acquire(m: Manifest, payload: Uint8Array): Promise<OnlineLearner> {
    const k = key(m.name, m.version);
    const have = this.byKey.get(k);
    // Same version, same artifact and parameters: the same learner. A manifest changed under
    // the same version string (a fixture rewritten) starts afresh.
    if (have && have.learner.manifest.payload.sha256 === m.payload.sha256 && JSON.stringify(have.learner.manifest.parameters) === JSON.stringify(m.parameters)) {
      have.refs++;
      return have.learner;
    }
    const start = await this.opts.restore?.(m);
    const learner: OnlineLearner = m.kind === 'online-logistic'
      ? new LogisticLearner(m, logisticStart(m, payload), start)
      : new BanditLearner(m, this.opts.judge(m), start ?? { state: initialState(parseBanditConfig(m)), updates: 0, events: 0 });
    if (have) this.drop(k, have);
    this.byKey.set(k, { learner, refs: 1 });
    learner.start();
    this.opts.started?.(learner);
    return learner;
  }

  /** Where a new bandit learner of `m` starts: its latest checkpoint, else the prior. */
  async startState(m: Manifest): Promise<LearnedSnapshot> {
    return (await this.opts.restore?.(m)) ?? { state: initialState(parseBanditConfig(m)), updates: 0, events: 0 };
  }

  /** A generation using `learner` is gone; the last one retires it. */
  release(learner: OnlineLearner): void {
    const k = key(learner.name, learner.version);
    const e = this.byKey.get(k);
    if (!e || e.learner !== learner) return;
    if (--e.refs > 0) return;
    this.drop(k, e);
  }

  get(model: string, version: string): OnlineLearner | undefined {
    return this.byKey.get(key(model, version))?.learner;
  }

  /**
   * The `learner_unstable` alert source: whether the version's learner had an update rejected by
   * the stability checks within the last `windowMs` (undefined: the version learns nothing here).
   */
  unstable(model: string, version: string, windowMs: number, now = Date.now()): boolean | undefined {
    const l = this.get(model, version);
    if (!l) return undefined;
    return l.counters.lastRejectedAt !== null && now - l.counters.lastRejectedAt <= windowMs;
  }

  all(): OnlineLearner[] {
    return [...this.byKey.values()].map((e) => e.learner);
  }

  private drop(k: string, e: Entry): void {
    this.byKey.delete(k);
    e.learner.flush();
    e.learner.stop();
    void this.opts.retired?.(e.learner);
  }

  /** Applies what is queued, stops every learner and gives each its last save. */
  async close(): Promise<void> {
    const all = [...this.byKey.values()];
    this.byKey.clear();
    for (const e of all) {
      e.learner.flush();
      e.learner.stop();
    }
    await Promise.all(all.map((e) => this.opts.retired?.(e.learner)));
  }

  metricLines(): string[] {
    const out: string[] = [];
    const ls = this.all();
    if (ls.length === 0) return out;
    const id = (l: OnlineLearner) => ({ model: l.name, version: l.version });
    family(out, 'sluice_learner_updates_total', 'counter', 'Updates the online learner applied (the state number answers carry).', ls.map((l) => [id(l), l.counters.updates]));
    family(out, 'sluice_learner_events_total', 'counter', 'Feedback events the online learner applied.', ls.map((l) => [id(l), l.counters.events]));
    family(out, 'sluice_learner_queued_events', 'gauge', 'Joined feedback waiting for the next update.', ls.map((l) => [id(l), l.queued]));
    family(out, 'sluice_learner_unusable_events_total', 'counter', 'Feedback the learner could not use (a decision without its arm or context).', ls.map((l) => [id(l), l.counters.unusable]));
    const rejected: Array<[Record<string, string>, number]> = [];
    for (const l of ls) for (const [reason, n] of l.counters.rejected) rejected.push([{ ...id(l), reason }, n]);
    family(out, 'sluice_learner_rejected_events_total', 'counter', 'Events dropped with an update the stability checks rejected (the state stayed the last good one), by reason.', rejected);
    return out;
  }
}
