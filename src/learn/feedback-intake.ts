/**
 * Feedback intake: durable before acknowledged, applied once per event id.
 *
 * Database mode (normal). Submitted events are group-committed: they queue, and each batch
 * (batchSize events, or what arrived within flushMs, or what queued while the batch before
 * committed; up to `concurrency` batches at once) is one transaction: a SELECT that finds, for
 * every id at once, an earlier
 * feedback row and the decision (decisions still buffered in this process come from
 * DecisionLog.pending instead), then one multi-row INSERT ... ON CONFLICT (event_id) DO NOTHING
 * RETURNING event_id. Each answer waits for its batch's commit. Refusals: EVENT_NOT_FOUND
 * (no decision), FEEDBACK_TOO_LATE (outcome time - decision time > joinWindowMs); a repeat is
 * `duplicate`. A decision made moments ago may still be in another I/O thread's buffer: an id
 * whose UUIDv7 time is younger than notFoundGraceMs is looked up again until then.
 *
 * Local mode and recovery (feedback-local.ts, a FeedbackLocal this intake owns). The first batch
 * that finds the database unreachable, and every batch after it, is appended to a local fsynced
 * log instead, until a replayer finds the database again and replays the log into it. Events
 * in the local log not yet replayed are checked first in either mode: a repeat is `duplicate`.
 *
 * Subscribers are offered each event when its row is committed (database mode or replay),
 * joined to its decision, exactly once per stored row.
 */
import path from 'node:path';
import { isStorageFull, SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { isUnavailable, retryConflicts, type Db } from '../registry/db.js';
import type { Decision } from './decision.js';
import type { DecisionLog } from './decision-log.js';
import { eventIdTime, isValidEventId, isValidUnitId } from './event-id.js';
import { errorOutcome, type FeedbackInput, type FeedbackOutcome, type JoinedFeedback } from './feedback.js';
import { FeedbackLocal, type Pending } from './feedback-local.js';
import { insertRows, lookUp, rowDecision, type Row } from './feedback-store.js';
import { family } from '../metrics/families.js';
import { RateLimited } from './metric-lines.js';

export interface FeedbackIntakeOptions {
  db: Db;
  /** The local log lives in `<dataDir>/feedback`. */
  dataDir: string;
  decisions: DecisionLog;
  joinWindowMs: number;
  /** Events per database transaction at most. */
  batchSize: number;
  /** Longest an event waits for its batch to start. */
  flushMs: number;
  /**
   * Batches in flight at once (default 2): while one commits, the next is looked up, so the
   * database's work and this thread's overlap (each its own transaction; see runBatch).
   */
  concurrency?: number;
  /** How long an unknown UUIDv7 id younger than this is looked up again (default 2 s). */
  notFoundGraceMs?: number;
  /** Probe backoff while the database is unreachable (default 100 ms .. 2 s). */
  probeMinMs?: number;
  probeMaxMs?: number;
  /** Size at which a local log segment is closed and a new one started (default 64 MiB). */
  maxSegmentBytes?: number;
}

export interface FeedbackStats {
  accepted: number;
  duplicate: number;
  refused: Record<string, number>;
  /** Bytes in the local log not yet replayed. */
  localLogBytes: number;
  /** Records replayed from the local log into the database (duplicates included). */
  replayed: number;
  /** Events in the local log not yet replayed. */
  replayPending: number;
  /** Replayed records already in the database (applied once). */
  replayDuplicates: number;
  /** Replayed events stored without a decision to join (none was found). */
  unjoined: number;
  /** Unreadable lines in the local log (torn, never acknowledged writes). */
  corruptRecords: number;
  /** True while events go to the local log. */
  localMode: boolean;
}

interface Waiting extends Pending {
  resolve: (o: FeedbackOutcome) => void;
}

export class FeedbackIntake {
  private readonly o: Required<Omit<FeedbackIntakeOptions, 'db' | 'decisions'>> & Pick<FeedbackIntakeOptions, 'db' | 'decisions'>;
  /** Local mode and recovery (feedback-local.ts). */
  private readonly local: FeedbackLocal;
  private queue: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The batch loops running (at most opts.concurrency). */
  private readonly loops = new Set<Promise<void>>();
  /** Events not found yet but young enough to look up again, waiting for their retry. */
  private readonly deferred = new Set<NodeJS.Timeout>();
  private readonly deferredItems = new Map<NodeJS.Timeout, Waiting>();
  private readonly subscribers = new Set<(f: JoinedFeedback) => void>();
  private closing = false;
  private started = false;
  private readonly counts = { accepted: 0, duplicate: 0 };
  private readonly refused = new Map<string, number>();
  private readonly warnLog = new RateLimited(10_000);

  constructor(opts: FeedbackIntakeOptions) {
    this.o = { concurrency: 2, notFoundGraceMs: 2_000, probeMinMs: 100, probeMaxMs: 2_000, maxSegmentBytes: 64 * 1024 * 1024, ...opts };
    this.local = new FeedbackLocal({
      db: opts.db,
      decisions: opts.decisions,
      dir: path.join(opts.dataDir, 'feedback'),
      maxSegmentBytes: this.o.maxSegmentBytes,
      probeMinMs: this.o.probeMinMs,
      probeMaxMs: this.o.probeMaxMs,
      warnLog: this.warnLog,
      closing: () => this.closing,
      inMemory: (ids) => this.inMemory(ids),
      late: (w, decidedAt) => (this.tooLate(w, decidedAt) ? this.lateError(w, decidedAt) : undefined),
      emit: (rows) => this.emit(rows),
    });
  }

  get stats(): FeedbackStats {
    return {
      ...this.counts,
      ...this.local.counts,
      refused: Object.fromEntries(this.refused),
      localLogBytes: this.local.bytes,
      replayPending: this.local.pending,
      localMode: this.local.isLocal,
    };
  }

  /** Opens (creating) the local log and replays what an earlier run left in it, if the database answers. */
  async start(): Promise<void> {
    await this.local.open();
    // Taking events while the log is replayed: their ids in it are known already.
    this.started = true;
    await this.local.replayLeftOver();
  }

  subscribe(fn: (f: JoinedFeedback) => void): () => void {
    this.subscribers.add(fn);
    return () => {
      this.subscribers.delete(fn);
    };
  }

  /** Stores the events; each answer comes once its event is durable (or refused). */
  submit(items: FeedbackInput[]): Promise<FeedbackOutcome[]> {
    const receivedAt = Date.now();
    return Promise.all(items.map((item) => {
      const refusal = this.check(item);
      if (refusal) return this.refuse(item.eventId ?? null, refusal);
      return new Promise<FeedbackOutcome>((resolve) => {
        this.queue.push({ item, receivedAt, resolve });
        this.kick();
      });
    }));
  }

  /** Stops taking events, stores what was submitted, stops the replayer, closes the log. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Events waiting for a second look are looked up once more, now.
    for (const t of this.deferred) {
      clearTimeout(t);
      this.queue.push(this.deferredItems.get(t)!);
    }
    this.deferred.clear();
    this.deferredItems.clear();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    while (this.loops.size > 0) await Promise.all(this.loops);
    while (this.queue.length > 0) await this.runBatch();
    await this.local.close();
  }

  metricLines(): string[] {
    const out: string[] = [];
    const s = this.stats;
    family(out, 'sluice_feedback_accepted_total', 'counter', 'Feedback events accepted (durable: committed, or fsynced to the local log).', [[{}, s.accepted]]);
    family(out, 'sluice_feedback_duplicate_total', 'counter', 'Feedback events acknowledged as repeats of an earlier one (applied once).', [[{}, s.duplicate]]);
    family(out, 'sluice_feedback_refused_total', 'counter', 'Feedback events refused, by code.', [...this.refused].map(([code, n]) => [{ code }, n]));
    family(out, 'sluice_feedback_local_log_bytes', 'gauge', 'Bytes of feedback in the local log, waiting to be replayed into the database.', [[{}, s.localLogBytes]]);
    family(out, 'sluice_feedback_replay_pending', 'gauge', 'Feedback events in the local log not yet replayed.', [[{}, s.replayPending]]);
    family(out, 'sluice_feedback_replayed_total', 'counter', 'Feedback events replayed from the local log into the database.', [[{}, s.replayed]]);
    family(out, 'sluice_feedback_replay_duplicates_total', 'counter', 'Replayed feedback events that were already stored (applied once).', [[{}, s.replayDuplicates]]);
    family(out, 'sluice_feedback_unjoined_total', 'counter', 'Replayed feedback events stored without a decision to join.', [[{}, s.unjoined]]);
    family(out, 'sluice_feedback_local_mode', 'gauge', '1 while feedback goes to the local log (database unreachable).', [[{}, s.localMode ? 1 : 0]]);
    return out;
  }

  // ---- the batch loop -------------------------------------------------------------------------

  /** A cheap re-check for callers other than parseFeedback (it makes the same checks). */
  private check(item: FeedbackInput): SluiceError | undefined {
    if (this.closing || !this.started) return new SluiceError('SHUTTING_DOWN', this.closing ? 'the server is shutting down' : 'feedback intake not started');
    if (!isValidEventId(item.eventId)) return new SluiceError('FEEDBACK_INVALID', 'event_id must be a string of 1 to 128 characters without control characters');
    if (typeof item.reward !== 'number' || !Number.isFinite(item.reward)) return new SluiceError('FEEDBACK_INVALID', 'reward must be a finite number');
    if (item.unitId !== undefined && !isValidUnitId(item.unitId)) return new SluiceError('FEEDBACK_INVALID', 'bad unit_id');
    if (item.at !== undefined && (!Number.isSafeInteger(item.at) || item.at < 0)) return new SluiceError('FEEDBACK_INVALID', 'at must be integer milliseconds since the epoch');
    return undefined;
  }

  private refuse(eventId: string | null, e: SluiceError): Promise<FeedbackOutcome> {
    this.refused.set(e.code, (this.refused.get(e.code) ?? 0) + 1);
    return Promise.resolve(errorOutcome(eventId, e));
  }

  private kick(): void {
    if (this.loops.size > 0) {
      // A running loop takes what queued when its batch commits; a full batch may start another.
      if (this.queue.length >= this.o.batchSize) this.startLoop();
      return;
    }
    if (this.queue.length >= this.o.batchSize) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.startLoop();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.startLoop();
      }, this.o.flushMs);
    }
  }

  private startLoop(): void {
    if (this.loops.size >= this.o.concurrency || this.queue.length === 0) return;
    const loop: Promise<void> = (async () => {
      while (this.queue.length > 0) await this.runBatch();
    })().finally(() => {
      this.loops.delete(loop);
      // Events submitted after the last batch was taken, while this loop was ending.
      if (this.queue.length > 0 && !this.closing) this.kick();
    });
    this.loops.add(loop);
  }

  /**
   * One batch, never throwing: every event in it is answered. Batches may run side by side
   * (opts.concurrency), each in its own transaction: an event in two of them at once is
   * inserted by one, and the other's INSERT waits for that commit and stores nothing (a
   * duplicate; insertRows locks ids in sorted order, so two batches never wait on each other
   * in a cycle). Local-log batches run one at a time (FeedbackLocal.toLocalLog).
   */
  private async runBatch(): Promise<void> {
    const batch = this.queue.splice(0, this.o.batchSize);
    // Repeats inside the batch follow their first copy.
    const first = new Map<string, Waiting>();
    const copies: Array<[Waiting, Waiting]> = [];
    for (const w of batch) {
      const f = first.get(w.item.eventId);
      if (f) copies.push([w, f]);
      else first.set(w.item.eventId, w);
    }
    const outcomes = new Map<Waiting, FeedbackOutcome | 'deferred'>();
    const todo: Waiting[] = [];
    for (const w of first.values()) {
      if (this.local.has(w.item.eventId)) outcomes.set(w, { event_id: w.item.eventId, status: 'duplicate' });
      else todo.push(w);
    }
    if (todo.length > 0) {
      try {
        if (!this.local.isLocal) {
          try {
            await this.toDatabase(todo, outcomes);
          } catch (e) {
            if (!isUnavailable(e) && !isStorageFull(e)) throw e;
            this.local.goLocal(e);
            await this.local.toLocalLog(todo, outcomes);
          }
        } else {
          await this.local.toLocalLog(todo, outcomes);
        }
      } catch (e) {
        log.error('feedback: batch failed', { events: todo.length, ...errorFields(e) });
        const err = new SluiceError('INTERNAL', 'feedback could not be stored');
        for (const w of todo) if (!outcomes.has(w)) outcomes.set(w, errorOutcome(w.item.eventId, err));
      }
    }
    const answer = (w: Waiting, o: FeedbackOutcome): void => {
      if ('status' in o) this.counts[o.status]++;
      else this.refused.set(o.error.code, (this.refused.get(o.error.code) ?? 0) + 1);
      w.resolve(o);
    };
    for (const [w, o] of outcomes) {
      if (o === 'deferred') this.defer(w);
      else answer(w, o);
    }
    for (const [w, f] of copies) {
      const o = outcomes.get(f)!;
      if (o === 'deferred') this.defer(w);
      else answer(w, 'status' in o ? { event_id: o.event_id, status: 'duplicate' } : o);
    }
  }

  /** Looks the event up again in a moment (its decision may still be in another thread's buffer). */
  private defer(w: Waiting): void {
    if (this.closing) {
      this.queue.push(w);
      return;
    }
    const t = setTimeout(() => {
      this.deferred.delete(t);
      this.deferredItems.delete(t);
      this.queue.push(w);
      this.kick();
    }, Math.max(this.o.flushMs, 50));
    this.deferred.add(t);
    this.deferredItems.set(t, w);
  }

  /** Decisions still in memory (buffered, or written lately), which need no lookup in the chunks. */
  private inMemory(ids: readonly string[]): Map<string, Decision> {
    const known = new Map<string, Decision>();
    for (const id of ids) {
      const d = this.o.decisions.find(id);
      if (d) known.set(id, d);
    }
    return known;
  }

  private tooLate(w: Pending, decidedAt: number): boolean {
    return (w.item.at ?? w.receivedAt) - decidedAt > this.o.joinWindowMs;
  }

  private lateError(w: Pending, decidedAt: number): FeedbackOutcome {
    const hours = ((w.item.at ?? w.receivedAt) - decidedAt) / 3_600_000;
    return errorOutcome(w.item.eventId, new SluiceError('FEEDBACK_TOO_LATE', `feedback ${hours.toFixed(1)} h after its decision; the join window is ${(this.o.joinWindowMs / 3_600_000).toFixed(1)} h`));
  }

  // ---- database mode --------------------------------------------------------------------------

  private async toDatabase(todo: Waiting[], outcomes: Map<Waiting, FeedbackOutcome | 'deferred'>): Promise<void> {
    const known = this.inMemory(todo.map((w) => w.item.eventId));
    const stored = await retryConflicts(() => this.o.db.transaction(async (tx) => {
      const found = await lookUp(tx, todo.map((w) => w.item.eventId), known);
      const rows: Row[] = [];
      // This attempt's answers (a retried transaction starts them afresh).
      const answers = new Map<Waiting, FeedbackOutcome | 'deferred'>();
      for (const w of todo) {
        const id = w.item.eventId;
        const r = found.get(id);
        if (r?.seen) {
          answers.set(w, { event_id: id, status: 'duplicate' });
          continue;
        }
        // The database's answer first: `pending` (decisions not yet committed) searches buffers.
        const decision = known.get(id) ?? (r ? rowDecision(r, id) : undefined) ?? this.o.decisions.pending(id);
        if (!decision) {
          const t = eventIdTime(id);
          const young = t !== undefined && Date.now() - t < this.o.notFoundGraceMs && !this.closing;
          answers.set(w, young ? 'deferred' : errorOutcome(id, new SluiceError('EVENT_NOT_FOUND', 'no decision was logged with this event_id')));
          continue;
        }
        if (this.tooLate(w, decision.at)) {
          answers.set(w, this.lateError(w, decision.at));
          continue;
        }
        rows.push({ eventId: id, reward: w.item.reward, unitId: w.item.unitId, at: w.item.at ?? w.receivedAt, receivedAt: w.receivedAt, decision, viaLocalLog: false });
      }
      const inserted = await insertRows(tx, rows);
      for (const w of todo) {
        if (answers.has(w)) continue;
        answers.set(w, { event_id: w.item.eventId, status: inserted.has(w.item.eventId) ? 'accepted' : 'duplicate' });
      }
      return { answers, rows: rows.filter((r) => inserted.has(r.eventId)) };
    }));
    // Committed: only now are the answers final.
    for (const [w, o] of stored.answers) outcomes.set(w, o);
    this.emit(stored.rows);
  }

  private emit(rows: Row[]): void {
    if (this.subscribers.size === 0) return;
    for (const r of rows) {
      if (!r.decision) continue;
      const f: JoinedFeedback = { eventId: r.eventId, reward: r.reward, at: r.at, decision: r.decision };
      for (const fn of this.subscribers) {
        try {
          fn(f);
        } catch (e) {
          if (this.warnLog.ready()) log.warn('feedback: a subscriber failed', errorFields(e));
        }
      }
    }
  }
}
