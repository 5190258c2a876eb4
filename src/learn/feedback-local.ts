/**
 * The feedback intake's local mode and recovery: what FeedbackIntake (feedback-intake.ts, the
 * database mode) does with feedback while the database is unreachable, and after.
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
 * database again (the intake checks the in-memory ids first, so a repeat is still `duplicate`),
 * the current segment is sealed, and sealed segments are replayed in order through the same
 * INSERT ... ON CONFLICT DO NOTHING, each deleted only after all of its records are committed.
 * A crash anywhere replays a segment again at the next start, without duplicates.
 */
import { isStorageFull, SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { isUnavailable, retryConflicts, type Db } from '../registry/db.js';
import type { Decision } from './decision.js';
import type { DecisionLog } from './decision-log.js';
import { eventIdTime } from './event-id.js';
import { errorOutcome, type FeedbackInput, type FeedbackOutcome } from './feedback.js';
import { insertRows, loggedDecision, lookUp, rowDecision, type Row } from './feedback-store.js';
import { LocalLog, readSegment, type LogRecord, type Segment } from './local-log.js';
import { Backoff, type RateLimited } from './metric-lines.js';

/** An event waiting for its answer (the intake's queue entry), as much of it as the local log needs. */
export interface Pending {
  item: FeedbackInput;
  receivedAt: number;
}

/** What the local mode needs of the intake that owns it. */
export interface FeedbackLocalOptions {
  db: Db;
  decisions: DecisionLog;
  /** The log's directory (`<dataDir>/feedback`). */
  dir: string;
  maxSegmentBytes: number;
  probeMinMs: number;
  probeMaxMs: number;
  /** The intake's: one rate limit for all of its warnings. */
  warnLog: RateLimited;
  /** True once the intake is closing: no replayer is started, and a replay stops between batches. */
  closing: () => boolean;
  /** Decisions in memory (DecisionLog.find), which need no lookup in the chunks. */
  inMemory: (ids: readonly string[]) => Map<string, Decision>;
  /** The FEEDBACK_TOO_LATE refusal of an event decided at `decidedAt`, or undefined if in time. */
  late: (w: Pending, decidedAt: number) => FeedbackOutcome | undefined;
  /** Offers committed rows to the intake's subscribers. */
  emit: (rows: Row[]) => void;
}

const REPLAY_BATCH = 1000;

export class FeedbackLocal {
  private readonly log: LocalLog;
  /** Local-log batches, one after another (see toLocalLog). */
  private localChain: Promise<unknown> = Promise.resolve();
  /** Event ids in the local log, not yet replayed. */
  private readonly inLog = new Set<string>();
  private mode: 'db' | 'local' = 'db';
  private replaying: Promise<void> | undefined;
  /** The replay's counters (FeedbackStats has them). */
  readonly counts = { replayed: 0, replayDuplicates: 0, unjoined: 0, corruptRecords: 0 };

  constructor(private readonly o: FeedbackLocalOptions) {
    this.log = new LocalLog(o.dir, o.maxSegmentBytes);
  }

  /** True while events go to the local log. */
  get isLocal(): boolean {
    return this.mode === 'local';
  }

  /** Bytes in the local log not yet replayed. */
  get bytes(): number {
    return this.log.bytes;
  }

  /** Events in the local log not yet replayed. */
  get pending(): number {
    return this.inLog.size;
  }

  /** Whether the event is in the local log, not yet replayed (a repeat of it is `duplicate`). */
  has(eventId: string): boolean {
    return this.inLog.has(eventId);
  }

  /** Opens (creating) the local log and reads the ids of what an earlier run left in it. */
  async open(): Promise<void> {
    await this.log.open();
    for (const seg of this.log.sealed()) {
      const { records, corrupt } = await readSegment(seg);
      this.counts.corruptRecords += corrupt;
      for (const r of records) this.inLog.add(r.e);
    }
  }

  /** Replays what an earlier run left in the log, if the database answers. */
  async replayLeftOver(): Promise<void> {
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

  /** Waits for the replayer (it stops between batches once closing) and closes the log. */
  async close(): Promise<void> {
    await this.replaying;
    await this.log.close();
  }

  // ---- local mode -----------------------------------------------------------------------------

  /** Sends every batch to the local log from now on, and starts the replayer, which probes for the database. */
  goLocal(cause: unknown): void {
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
  toLocalLog<W extends Pending>(todo: W[], outcomes: Map<W, FeedbackOutcome | 'deferred'>): Promise<void> {
    const run = this.localChain.then(() => this.appendLocal(todo, outcomes));
    this.localChain = run.catch(() => undefined);
    return run;
  }

  private async appendLocal<W extends Pending>(todo: W[], outcomes: Map<W, FeedbackOutcome | 'deferred'>): Promise<void> {
    const records: LogRecord[] = [];
    const accepted: W[] = [];
    for (const w of todo) {
      const id = w.item.eventId;
      // Checked again here, not only by the intake: a batch appended just before this one may
      // have stored the id after this batch was checked.
      if (this.inLog.has(id)) {
        outcomes.set(w, { event_id: id, status: 'duplicate' });
        continue;
      }
      const d = this.o.decisions.pending(id);
      const decidedAt = d?.at ?? eventIdTime(id);
      const late = decidedAt !== undefined ? this.o.late(w, decidedAt) : undefined;
      if (late) {
        outcomes.set(w, late);
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
      if (this.o.warnLog.ready()) log.error('feedback: the local log cannot be written', { dir: this.log.dir, ...errorFields(e) });
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
    if (this.replaying || this.o.closing()) return;
    this.replaying = this.replayLoop().finally(() => {
      this.replaying = undefined;
      // Gone local again (or a segment appeared) while the loop was ending: start over.
      if (!this.o.closing() && (this.mode === 'local' || this.log.hasSegments)) this.startReplayer();
    });
  }

  private async replayLoop(): Promise<void> {
    const backoff = new Backoff(this.o.probeMinMs, this.o.probeMaxMs);
    while (!this.o.closing()) {
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
        if (this.o.warnLog.ready()) log.warn('feedback: replay failed; will retry', errorFields(e));
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
      if (this.o.closing()) return;
      await this.replaySegment(seg);
    }
  }

  private async replaySegment(seg: Segment): Promise<void> {
    const { records } = await readSegment(seg);
    for (let i = 0; i < records.length; i += REPLAY_BATCH) {
      // Shutting down: the rest of this segment is replayed (again, harmlessly) at the next start.
      if (this.o.closing()) return;
      const chunk = records.slice(i, i + REPLAY_BATCH);
      const known = this.o.inMemory(chunk.map((r) => r.e));
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
      this.o.emit(stored);
    }
    // Every record is committed: only now may the file go.
    await this.log.remove(seg);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms).unref?.());
  }
}
