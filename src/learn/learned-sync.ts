/**
 * Keeps learned state across restarts and replicas (control plane): each learner starts from
 * its version's latest checkpoint (whoever wrote it), and then, every `syncMs`,
 *  - a bandit learner (additive sufficient statistics) publishes its own changes since the last
 *    sync as one delta and adds every other replica's deltas (deltas.ts: exactly once);
 *  - every `checkpointMs`, and when its version is unloaded or the server stops, the state is
 *    checkpointed (checkpoints.ts: compressed, in the artifact store, visible once whole).
 *
 * What a bandit checkpoint holds is the state as of the last sync, not the learner's latest:
 * the additive part as published and merged (so the checkpoint's watermarks describe it
 * exactly), with A^-1 rebuilt from it. Events the learner applied after that sync are in the
 * next delta, never in both. A crash loses what was applied since the last sync from the
 * learned state (the feedback itself is stored and acknowledged; replay is not implemented).
 */
import { errorFields, log } from '../log.js';
import type { Manifest } from '../model/manifest.js';
import type { Db } from '../registry/db.js';
import type { ArtifactStore } from '../artifacts/store.js';
import { BanditLearner } from './bandit-learner.js';
import { isLinear, parseBanditConfig } from './bandit/config.js';
import { layoutOf } from './bandit/layout.js';
import { mergeDelta, rebuildInverse } from './bandit/update.js';
import { CheckpointStore } from './checkpoints.js';
import { DeltaExchange } from './deltas.js';
import type { LearnedSnapshot, OnlineLearner } from './online-learner.js';
import type { Watermarks } from './watermarks.js';

export interface LearnedSyncOptions {
  replica: string;
  syncMs: number;
  checkpointMs: number;
}

interface Tracked {
  learner: OnlineLearner;
  timer: NodeJS.Timeout;
  exchange?: DeltaExchange;
  /** The additive part as of the last publish and merges. */
  shared?: Float64Array;
  sharedEvents: number;
  sharedUpdates: number;
  /** A delta whose publish failed: published again, as it is, before anything else. */
  unpublished?: { delta: Float64Array; events: number };
  watermarks: Watermarks;
  lastCheckpoint: number;
  /** One sync at a time. */
  running?: Promise<void>;
}

function key(model: string, version: string): string {
  return model + '\u0000' + version;
}

export class LearnedSync {
  private readonly checkpoints: CheckpointStore;
  private readonly tracked = new Map<string, Tracked>();
  /** Watermarks of the checkpoint each learner was restored from, until it starts. */
  private readonly restoredMarks = new Map<string, Watermarks>();

  constructor(private readonly db: Db, artifacts: ArtifactStore, private readonly opts: LearnedSyncOptions) {
    this.checkpoints = new CheckpointStore(db, artifacts);
  }

  /** Learners options' `restore`: the latest checkpoint of `m`'s version that fits it. */
  readonly restore = async (m: Manifest): Promise<LearnedSnapshot | undefined> => {
    const cp = await this.checkpoints.latest(m.name, m.version);
    if (!cp) return undefined;
    const state = new Float64Array(cp.bytes.buffer, cp.bytes.byteOffset, cp.bytes.byteLength / 8);
    if (m.kind !== 'online-logistic' && state.length !== layoutOf(parseBanditConfig(m)).length) {
      log.warn('learner: the latest checkpoint does not fit the manifest, starting from the prior', { model: m.name, version: m.version, checkpoint: cp.row.id });
      return undefined;
    }
    this.restoredMarks.set(key(m.name, m.version), cp.row.watermarks);
    log.info('learner: restored from checkpoint', { model: m.name, version: m.version, checkpoint: cp.row.id, state: cp.row.state, events: cp.row.events, writer: cp.row.replica });
    return { state, updates: cp.row.state, events: cp.row.events };
  };

  /** Learners options' `started`. */
  readonly started = (learner: OnlineLearner): void => {
    const k = key(learner.name, learner.version);
    const snap = learner.snapshot();
    const t: Tracked = {
      learner,
      timer: setInterval(() => void this.syncOnce(t), this.opts.syncMs),
      sharedEvents: snap.events,
      sharedUpdates: snap.updates,
      watermarks: this.restoredMarks.get(k) ?? {},
      lastCheckpoint: Date.now(),
    };
    this.restoredMarks.delete(k);
    t.timer.unref();
    if (learner.additive && learner instanceof BanditLearner) {
      const from = layoutOf(learner.config).additiveFrom;
      t.shared = snap.state.slice(from);
      t.exchange = new DeltaExchange(this.db, { model: learner.name, version: learner.version, replica: this.opts.replica, length: t.shared.length });
    }
    this.tracked.set(k, t);
    // Catch up with the fleet at once rather than after the first interval.
    void this.syncOnce(t);
  };

  /** Learners options' `retired`: a last sync and checkpoint. */
  readonly retired = async (learner: OnlineLearner): Promise<void> => {
    const k = key(learner.name, learner.version);
    const t = this.tracked.get(k);
    if (!t || t.learner !== learner) return;
    clearInterval(t.timer);
    this.tracked.delete(k);
    await t.running;
    await this.sync(t, true);
  };

  private syncOnce(t: Tracked): Promise<void> {
    if (t.running) return t.running;
    const due = Date.now() - t.lastCheckpoint >= this.opts.checkpointMs;
    t.running = this.sync(t, due).finally(() => (t.running = undefined));
    return t.running;
  }

  private async sync(t: Tracked, checkpoint: boolean): Promise<void> {
    const l = t.learner;
    try {
      if (t.exchange && l instanceof BanditLearner) {
        await this.exchange(t, l);
      }
      if (checkpoint) await this.checkpoint(t);
    } catch (e) {
      log.warn('learner: state sync failed, retrying at the next interval', { model: l.name, version: l.version, ...errorFields(e) });
    }
  }

  /** Publishes this replica's changes since the last sync, then adds the other replicas'. */
  private async exchange(t: Tracked, l: BanditLearner): Promise<void> {
    const ex = t.exchange!;
    if (t.unpublished) {
      await ex.publish(t.unpublished.delta, t.unpublished.events);
      t.unpublished = undefined;
    }
    const from = layoutOf(l.config).additiveFrom;
    const snap = l.snapshot();
    const events = snap.events - t.sharedEvents;
    if (events > 0) {
      const now = snap.state.subarray(from);
      const delta = new Float64Array(now.length);
      for (let i = 0; i < now.length; i++) delta[i] = now[i]! - t.shared![i]!;
      // Claimed before the await: what the learner applies meanwhile goes in the next delta.
      t.shared = now.slice();
      t.sharedEvents = snap.events;
      t.sharedUpdates = snap.updates;
      t.unpublished = { delta, events };
      await ex.publish(delta, events);
      t.unpublished = undefined;
    }
    for (;;) {
      const r = await ex.pull(t.watermarks);
      for (const d of r.deltas) {
        if (l.merge((state) => mergeDelta(l.config, state, d.values), d.events)) {
          for (let i = 0; i < d.values.length; i++) t.shared![i]! += d.values[i]!;
          t.sharedEvents += d.events;
          t.sharedUpdates++;
        }
      }
      t.watermarks = r.watermarks;
      if (!r.more) break;
    }
  }

  private async checkpoint(t: Tracked): Promise<void> {
    const l = t.learner;
    let state: Float64Array;
    let updates: number;
    let events: number;
    if (t.shared && l instanceof BanditLearner) {
      // The state as of the last sync (see the file header): additive part, A^-1 rebuilt.
      const layout = layoutOf(l.config);
      state = new Float64Array(layout.length);
      state.set(t.shared, layout.additiveFrom);
      if (isLinear(l.config)) rebuildInverse(l.config, state);
      updates = t.sharedUpdates;
      events = t.sharedEvents;
    } else {
      const snap = l.snapshot();
      ({ state, updates, events } = snap);
    }
    if (events === 0) return;
    const row = await this.checkpoints.save({ model: l.name, version: l.version, state: updates, events, replica: this.opts.replica, watermarks: t.watermarks }, state);
    t.lastCheckpoint = Date.now();
    log.info('learner: checkpoint saved', { model: l.name, version: l.version, checkpoint: row.id, state: updates, events, bytes: row.compressedBytes });
  }

  /** Syncs and checkpoints every learner now (tests, shutdown). */
  async flushAll(): Promise<void> {
    await Promise.all([...this.tracked.values()].map(async (t) => {
      await t.running;
      await this.sync(t, true);
    }));
  }

  close(): void {
    for (const t of this.tracked.values()) clearInterval(t.timer);
  }
}
