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
 * Local mode (database unreachable). The first batch that finds the database unreachable, and
 * every batch after it, is appended to the local log (local-log.ts) and fsynced (one write
 * and one fdatasync per batch) before it is acknowledged. The decision cannot be looked up, so:
 *   - a decision still in this process's buffer is checked (and its join fields logged);
 *   - otherwise a UUIDv7 id carries its decision time: FEEDBACK_TOO_LATE is checked with it;
 *   - a client-made id cannot be checked at all: it is accepted, and kept unjoined at replay if
 *     no decision turns up (counted as unjoined); EVENT_NOT_FOUND is never answered here.
 * Repeats of events in the local log are `duplicate` (their ids are held in memory, rebuilt
 * from the files at start); a repeat of an event stored before the outage is accepted again
 * and applied once at replay (the unique event id skips it, counted as a replay duplicate).
 * ENOSPC on the log is FEEDBACK_STORAGE_FULL (503), never an acknowledgement.
 *
 * Recovery. A replayer probes the database with backoff; once it answers, new batches go to the
 * database again (checking the in-memory ids, so a repeat is still `duplicate`), the current
 * segment is sealed, and sealed segments are replayed in order through the same INSERT ... ON
 * CONFLICT DO NOTHING, each deleted only after all of its records are committed. A crash
 * anywhere replays a segment again at the next start, without duplicates.
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
import { insertRows, loggedDecision, lookUp, rowDecision, type Row } from './feedback-store.js';
import { LocalLog, readSegment, type LogRecord, type Segment } from './local-log.js';
import { Backoff, family, RateLimited } from './metric-lines.js';

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

interface Waiting {
  item: FeedbackInput;
  receivedAt: number;
  resolve: (o: FeedbackOutcome) => void;
}

const REPLAY_BATCH = 1000;

export class FeedbackIntake {
  private readonly o: Required<Omit<FeedbackIntakeOptions, 'db' | 'decisions'>> & Pick<FeedbackIntakeOptions, 'db' | 'decisions'>;
  private readonly log: LocalLog;
  private queue: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The batch loops running (at most opts.concurrency). */
  private readonly loops = new Set<Promise<void>>();
  /** Local-log batches, one after another (see toLocalLog). */
  private localChain: Promise<unknown> = Promise.resolve();
  /** Events not found yet but young enough to look up again, waiting for their retry. */
  private readonly deferred = new Set<NodeJS.Timeout>();
  private readonly deferredItems = new Map<NodeJS.Timeout, Waiting>();
  private readonly subscribers = new Set<(f: JoinedFeedback) => void>();
  /** Event ids in the local log, not yet replayed. */
  private readonly inLog = new Set<string>();
  private mode: 'db' | 'local' = 'db';
  private replaying: Promise<void> | undefined;
  private closing = false;
  private started = false;
  private readonly counts = { accepted: 0, duplicate: 0, replayed: 0, replayDuplicates: 0, unjoined: 0, corruptRecords: 0 };
  private readonly refused = new Map<string, number>();
  private readonly warnLog = new RateLimited(10_000);

  constructor(opts: FeedbackIntakeOptions) {
    this.o = { concurrency: 2, notFoundGraceMs: 2_000, probeMinMs: 100, probeMaxMs: 2_000, maxSegmentBytes: 64 * 1024 * 1024, ...opts };
    this.log = new LocalLog(path.join(opts.dataDir, 'feedback'), this.o.maxSegmentBytes);
  }

  get stats(): FeedbackStats {
    return {
      ...this.counts,
      refused: Object.fromEntries(this.refused),
      localLogBytes: this.log.bytes,
      replayPending: this.inLog.size,
      localMode: this.mode === 'local',
    };
  }

  /** Opens (creating) the local log and replays what an earlier run left in it, if the database answers. */
  async start(): Promise<void> {
    await this.log.open();
    for (const seg of this.log.sealed()) {
      const { records, corrupt } = await readSegment(seg);
      this.counts.corruptRecords += corrupt;
      for (const r of records) this.inLog.add(r.e);
    }
    this.started = true;
    if (!this.log.hasSegments) return;
    log.info('feedback: replaying the local log left by an earlier run', { events: this.inLog.size, bytes: this.log.bytes });
    try {
      await this.replaySealed();
    } catch (e) {
      // Never a reason not to serve: the replayer keeps trying in the background.
      if (isUnavailable(e) || isStorageFull(e)) this.goLocal(e);
      else {
        log.error('feedback: replaying the local log failed; retrying in the background', errorFields(e));
        this.startReplayer();
      }
    }
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
    await this.replaying;
    await this.log.close();
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
   * in a cycle). Local-log batches run one at a time (toLocalLog).
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
      if (this.inLog.has(w.item.eventId)) outcomes.set(w, { event_id: w.item.eventId, status: 'duplicate' });
      else todo.push(w);
    }
    if (todo.length > 0) {
      try {
        if (this.mode === 'db') {
          try {
            await this.toDatabase(todo, outcomes);
          } catch (e) {
            if (!isUnavailable(e) && !isStorageFull(e)) throw e;
            this.goLocal(e);
            await this.toLocalLog(todo, outcomes);
          }
        } else {
          await this.toLocalLog(todo, outcomes);
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

  private tooLate(w: Waiting, decidedAt: number): boolean {
    return (w.item.at ?? w.receivedAt) - decidedAt > this.o.joinWindowMs;
  }

  private lateError(w: Waiting, decidedAt: number): FeedbackOutcome {
    const hours = ((w.item.at ?? w.receivedAt) - decidedAt) / 3_600_000;
    return errorOutcome(w.item.eventId, new SluiceError('FEEDBACK_TOO_LATE', `feedback ${hours.toFixed(1)} h after its decision; the join window is ${(this.o.joinWindowMs / 3_600_000).toFixed(1)} h`));
  }

  // ---- database mode --------------------------------------------------------------------------

  private async toDatabase(todo: Waiting[], outcomes: Map<Waiting, FeedbackOutcome | 'deferred'>): Promise<void> {
    const known = this.inMemory(todo.map((w) => w.item.eventId));
    const stored = await retryConflicts(() => this.o.db.transaction(async (tx) => {
      const found = await lookUp(tx, todo.map((w) => w.item.eventId), known);
      const rows: Row[] = [];
      const local = new Map<Waiting, FeedbackOutcome | 'deferred'>();
      for (const w of todo) {
        const id = w.item.eventId;
        const r = found.get(id);
        if (r?.seen) {
          local.set(w, { event_id: id, status: 'duplicate' });
          continue;
        }
        // The database's answer first: `pending` (decisions not yet committed) searches buffers.
        const decision = known.get(id) ?? (r ? rowDecision(r, id) : undefined) ?? this.o.decisions.pending(id);
        if (!decision) {
          const t = eventIdTime(id);
          const young = t !== undefined && Date.now() - t < this.o.notFoundGraceMs && !this.closing;
          local.set(w, young ? 'deferred' : errorOutcome(id, new SluiceError('EVENT_NOT_FOUND', 'no decision was logged with this event_id')));
          continue;
        }
        if (this.tooLate(w, decision.at)) {
          local.set(w, this.lateError(w, decision.at));
          continue;
        }
        rows.push({ eventId: id, reward: w.item.reward, unitId: w.item.unitId, at: w.item.at ?? w.receivedAt, receivedAt: w.receivedAt, decision, viaLocalLog: false });
      }
      const inserted = await insertRows(tx, rows);
      for (const w of todo) {
        if (local.has(w)) continue;
        local.set(w, { event_id: w.item.eventId, status: inserted.has(w.item.eventId) ? 'accepted' : 'duplicate' });
      }
      return { local, rows: rows.filter((r) => inserted.has(r.eventId)) };
    }));
    // Committed: only now are the answers final.
    for (const [w, o] of stored.local) outcomes.set(w, o);
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

  // ---- local mode -----------------------------------------------------------------------------

  private goLocal(cause: unknown): void {
    if (this.mode !== 'local') {
      this.mode = 'local';
      log.warn('feedback: database unreachable; writing feedback to the local log', { dir: this.log.dir, ...errorFields(cause) });
    }
    this.startReplayer();
  }

  /**
   * Appends the batch to the local log, after any other batch's append (each sees the ids the
   * one before it stored: a repeat in a batch running beside it is a duplicate, as in one batch).
   */
  private toLocalLog(todo: Waiting[], outcomes: Map<Waiting, FeedbackOutcome | 'deferred'>): Promise<void> {
    const run = this.localChain.then(() => this.appendLocal(todo, outcomes));
    this.localChain = run.catch(() => undefined);
    return run;
  }

  private async appendLocal(todo: Waiting[], outcomes: Map<Waiting, FeedbackOutcome | 'deferred'>): Promise<void> {
    const records: LogRecord[] = [];
    const accepted: Waiting[] = [];
    for (const w of todo) {
      const id = w.item.eventId;
      if (this.inLog.has(id)) {
        outcomes.set(w, { event_id: id, status: 'duplicate' });
        continue;
      }
      const d = this.o.decisions.pending(id);
      const decidedAt = d?.at ?? eventIdTime(id);
      if (decidedAt !== undefined && this.tooLate(w, decidedAt)) {
        outcomes.set(w, this.lateError(w, decidedAt));
        continue;
      }
      const r: LogRecord = { e: id, r: w.item.reward, a: w.item.at ?? w.receivedAt, t: w.receivedAt };
      if (w.item.unitId !== undefined) r.u = w.item.unitId;
      if (d) r.d = { at: d.at, model: d.model, variant: d.variant, version: d.version, propensity: d.propensity, routeGen: d.routeGen, ...(d.unitId !== undefined ? { unitId: d.unitId } : {}), ...(d.action !== undefined ? { action: d.action } : {}) };
      records.push(r);
      accepted.push(w);
    }
    if (records.length === 0) return;
    try {
      await this.log.append(records);
    } catch (e) {
      const full = isStorageFull(e);
      if (this.warnLog.ready()) log.error('feedback: the local log cannot be written', { dir: this.log.dir, ...errorFields(e) });
      const err = full
        ? new SluiceError('FEEDBACK_STORAGE_FULL', 'the database is unreachable and the disk under the local feedback log is full; not stored, try again later')
        : new SluiceError('REGISTRY_UNAVAILABLE', 'the database is unreachable and the local feedback log cannot be written; not stored, try again later');
      for (const w of accepted) outcomes.set(w, errorOutcome(w.item.eventId, err));
      return;
    }
    for (const w of accepted) {
      this.inLog.add(w.item.eventId);
      outcomes.set(w, { event_id: w.item.eventId, status: 'accepted' });
    }
  }

  // ---- recovery -------------------------------------------------------------------------------

  private startReplayer(): void {
    if (this.replaying || this.closing) return;
    this.replaying = this.replayLoop().finally(() => {
      this.replaying = undefined;
      // Gone local again (or a segment appeared) while the loop was ending: start over.
      if (!this.closing && (this.mode === 'local' || this.log.hasSegments)) this.startReplayer();
    });
  }

  private async replayLoop(): Promise<void> {
    const backoff = new Backoff(this.o.probeMinMs, this.o.probeMaxMs);
    while (!this.closing) {
      if (this.mode === 'local') {
        try {
          await this.o.db.query('SELECT 1');
        } catch {
          await this.sleep(backoff.next());
          continue;
        }
        this.mode = 'db';
        log.info('feedback: database reachable again; replaying the local log', { events: this.inLog.size, bytes: this.log.bytes });
      }
      try {
        await this.replaySealed();
        backoff.reset();
      } catch (e) {
        if (this.warnLog.ready()) log.warn('feedback: replay failed; will retry', errorFields(e));
        await this.sleep(backoff.next());
        continue;
      }
      if (this.mode === 'db' && !this.log.hasSegments) {
        log.info('feedback: local log replayed', { replayed: this.counts.replayed, duplicates: this.counts.replayDuplicates, unjoined: this.counts.unjoined });
        return;
      }
    }
  }

  /** Seals the segment being written and replays every sealed one, oldest first; throws when the database fails. */
  private async replaySealed(): Promise<void> {
    await this.log.seal();
    for (const seg of this.log.sealed()) {
      if (this.closing) return;
      await this.replaySegment(seg);
    }
  }

  private async replaySegment(seg: Segment): Promise<void> {
    const { records } = await readSegment(seg);
    for (let i = 0; i < records.length; i += REPLAY_BATCH) {
      // Shutting down: the rest of this segment is replayed (again, harmlessly) at the next start.
      if (this.closing) return;
      const chunk = records.slice(i, i + REPLAY_BATCH);
      const known = this.inMemory(chunk.map((r) => r.e));
      const stored = await retryConflicts(() => this.o.db.transaction(async (tx) => {
        const found = await lookUp(tx, chunk.map((r) => r.e), known);
        const rows: Row[] = chunk.map((r) => {
          const f = found.get(r.e);
          const decision = known.get(r.e) ?? (f ? rowDecision(f, r.e) : undefined) ?? this.o.decisions.pending(r.e) ?? loggedDecision(r);
          return { eventId: r.e, reward: r.r, unitId: r.u, at: r.a, receivedAt: r.t, decision, viaLocalLog: true };
        });
        const inserted = await insertRows(tx, rows);
        return rows.filter((r) => inserted.has(r.eventId));
      }));
      this.counts.replayed += chunk.length;
      this.counts.replayDuplicates += chunk.length - stored.length;
      this.counts.unjoined += stored.filter((r) => !r.decision).length;
      for (const r of chunk) this.inLog.delete(r.e);
      this.emit(stored);
    }
    // Every record is committed: only now may the file go.
    await this.log.remove(seg);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms).unref?.());
  }
}
