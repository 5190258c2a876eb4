/**
 * The decision log: every routed answer's decision goes into a bounded in-memory buffer
 * (`offerChunk`, a thread's chunk of them, or `offer`, one; on the request path's hand-off:
 * never blocks, never throws) and is group-committed, one multi-row INSERT per batch (batchSize
 * decisions or a little more: chunks are not split, or whatever has waited flushMs), idempotent
 * so that a retried batch stores nothing twice. A thread's chunk arrives with its rows already
 * encoded (decision-chunk.ts) and is stored as it is, one row of `decision_chunks` per chunk;
 * decisions offered one by one become rows of `decisions` (migration 012).
 *
 * Decisions may be lost, predictions never: when the buffer is full (the database is away, or
 * slower than the traffic) decisions are dropped, counted, and a log line says so at most once
 * every 10 s. While the database is unreachable the buffer keeps what it holds and the batch is
 * retried with backoff. Until a decision is committed `pending` finds it, so feedback that
 * arrives early still joins (feedback-intake.ts).
 */
import { isStorageFull } from '../errors.js';
import { errorFields, log } from '../log.js';
import { isConflict, isUnavailable, retryConflicts, type Db } from '../registry/db.js';
import { decisionProblem, type Decision } from './decision.js';
import { chunkOf, findRow, releaseChunks, type DecisionChunk } from './decision-chunk.js';
import { insertDecisions } from './decision-inserts.js';
import { chunkPlace, uuidMs } from './event-id.js';
import { family } from '../metrics/families.js';
import { Backoff, RateLimited } from './metric-lines.js';

export interface DecisionLogOptions {
  /** Decisions buffered or in flight at most; beyond, `offer` drops. */
  capacity: number;
  /** Rows per INSERT at most. */
  batchSize: number;
  /** Longest a buffered decision waits before its batch is written. */
  flushMs: number;
  /**
   * Bytes of written decisions (their chunks' rows, contexts and directories) kept in memory for
   * feedback to join without reading the database (default 8 MB; 0 keeps none). Most feedback
   * follows its decision within seconds, and a decision in `decision_chunks` costs a lookup
   * several times a primary key's (migration 012; `npm run bench -- feedback`).
   */
  recentBytes?: number;
  /** Retry backoff bounds while the database is unreachable (default 100 ms .. 5 s). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How long close() keeps trying to write what is buffered (default 5 s). */
  closeTimeoutMs?: number;
}

interface Counts {
  model: string;
  variant: string;
  version: string;
  logged: number;
  dropped: number;
}

export class DecisionLog {
  /** Waiting to be written, oldest first. */
  private queue: DecisionChunk[] = [];
  private queuedN = 0;
  /** The batch being written. */
  private inFlight: DecisionChunk[] = [];
  private inFlightN = 0;
  /** Thread chunks written, oldest first, up to opts.recentBytes (see `find`). */
  private recent: DecisionChunk[] = [];
  private recentBytes = 0;
  /**
   * Decisions offered one by one (`offer`), by event id, until written: their ids may be any
   * client's text, which `pending` cannot find by time as it finds a thread's UUIDv7s.
   */
  private readonly singles = new Map<string, Decision>();
  private readonly perVariant = new Map<string, Counts>();
  private readonly counts = { logged: 0, dropped: 0, failedBatches: 0, invalid: 0 };
  private timer: NodeJS.Timeout | undefined;
  /** The timer is a retry after a failure (not to be cut short by a full batch). */
  private backingOff = false;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly backoff: Backoff;
  private readonly dropLog = new RateLimited(10_000);
  private readonly failLog = new RateLimited(10_000);

  constructor(private readonly db: Db, private readonly opts: DecisionLogOptions) {
    this.backoff = new Backoff(opts.retryMinMs ?? 100, opts.retryMaxMs ?? 5_000);
  }

  get stats(): { logged: number; dropped: number; pending: number; failedBatches: number; invalid: number } {
    return { ...this.counts, pending: this.queuedN + this.inFlightN };
  }

  /** Buffers one decision for the database; false when it was dropped (buffer full, closed, or a row the database would refuse). */
  offer(d: Decision): boolean {
    try {
      const problem = decisionProblem(d);
      if (problem !== undefined) {
        this.counts.invalid++;
        return this.dropOne(d, problem);
      }
      const chunk = chunkOf(d);
      if (!this.offerChunk(chunk)) return false;
      this.singles.set(d.eventId, d);
      return true;
    } catch {
      return false;
    }
  }

  /** Offers several one by one; returns how many were kept. */
  offerMany(ds: readonly Decision[]): number {
    let kept = 0;
    for (const d of ds) if (this.offer(d)) kept++;
    return kept;
  }

  /**
   * Buffers a thread's chunk of decisions (made by the data plane, so valid rows); false when
   * it was dropped whole (buffer full, or closed).
   */
  offerChunk(chunk: DecisionChunk): boolean {
    if (this.closed) return this.drop(chunk, 'closed');
    if (this.queuedN + this.inFlightN + chunk.n > this.opts.capacity) return this.drop(chunk, 'buffer full');
    this.queue.push(chunk);
    this.queuedN += chunk.n;
    if (this.queuedN >= this.opts.batchSize) this.kick(0);
    else this.kick(this.opts.flushMs);
    return true;
  }

  /** A decision buffered or being written (not yet committed), by event id. */
  pending(eventId: string): Decision | undefined {
    const single = this.singles.get(eventId);
    if (single) return single;
    return this.search([this.inFlight, this.queue], eventId);
  }

  /**
   * A decision by event id from memory: buffered, being written, or among the last `recent`
   * written by a thread (undefined: ask the database, which has every written one).
   */
  find(eventId: string): Decision | undefined {
    return this.pending(eventId) ?? this.search([this.recent], eventId);
  }

  /**
   * A thread's decisions carry UUIDv7 ids within their chunk's span, and the chunk's tag when it
   * has one: only the chunks both admit are read.
   */
  private search(lists: DecisionChunk[][], eventId: string): Decision | undefined {
    const place = chunkPlace(eventId);
    if (place === undefined) return undefined;
    const t = uuidMs(eventId);
    const tag = place.tag;
    for (const list of lists) {
      for (let i = list.length - 1; i >= 0; i--) {
        const c = list[i]!;
        if (t < c.minMs || t > c.maxMs || (c.tag !== undefined && c.tag !== tag)) continue;
        const d = findRow(c, eventId);
        if (d) return d;
      }
    }
    return undefined;
  }

  /**
   * Keeps written thread chunks for `find`, dropping the oldest beyond opts.recentBytes; a chunk
   * dropped goes back to its thread's pool (releaseChunks).
   */
  private remember(batch: DecisionChunk[]): void {
    const limit = this.opts.recentBytes ?? 8 << 20;
    if (limit <= 0) return releaseChunks(batch);
    for (const c of batch) {
      if (c.single !== undefined) continue;
      this.recent.push(c);
      this.recentBytes += chunkBytes(c);
    }
    let drop = 0;
    while (this.recentBytes > limit && drop < this.recent.length) this.recentBytes -= chunkBytes(this.recent[drop++]!);
    if (drop > 0) releaseChunks(this.recent.splice(0, drop));
  }

  /** Writes everything buffered now (tests, benchmarks); resolves when the buffer is empty or a write failed. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    this.clearTimer();
    await this.exclusive(async () => {
      while (this.queuedN > 0) if (!(await this.writeOne())) return false;
      return true;
    });
  }

  /** Stops taking decisions and writes what it can (up to closeTimeoutMs while the database fails). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    while (this.running) await this.running;
    const deadline = Date.now() + (this.opts.closeTimeoutMs ?? 5_000);
    while (this.queuedN > 0 && Date.now() < deadline) {
      if (!(await this.writeOne())) await sleep(Math.min(this.backoff.next(), Math.max(0, deadline - Date.now())));
    }
    if (this.queuedN > 0) {
      log.warn('decisions: not written at shutdown (database unreachable)', { dropped: this.queuedN });
      for (const c of this.queue) this.countDrop(c);
      releaseChunks(this.queue);
      this.queue = [];
      this.queuedN = 0;
      this.singles.clear();
    }
  }

  metricLines(): string[] {
    const out: string[] = [];
    const rows = [...this.perVariant.values()];
    const key = (c: Counts) => ({ model: c.model, variant: c.variant, version: c.version });
    family(out, 'sluice_decisions_logged_total', 'counter', 'Decisions written to the database, by model, variant and version.', rows.map((c) => [key(c), c.logged]));
    family(out, 'sluice_decisions_dropped_total', 'counter', 'Decisions dropped (buffer full, invalid, or unwritable at shutdown), by model, variant and version.', rows.map((c) => [key(c), c.dropped]));
    family(out, 'sluice_decisions_pending', 'gauge', 'Decisions buffered or being written.', [[{}, this.queuedN + this.inFlightN]]);
    family(out, 'sluice_decision_batches_failed_total', 'counter', 'Decision batches whose write failed (retried while the database is unreachable).', [[{}, this.counts.failedBatches]]);
    return out;
  }

  // ---- internals ------------------------------------------------------------------------------

  private drop(c: DecisionChunk, why: string): false {
    this.countDrop(c);
    releaseChunks([c]);
    return this.logDrop(why);
  }

  /** A single decision too malformed to make a chunk of (its fields may not even be strings). */
  private dropOne(d: Decision, why: string): false {
    this.counts.dropped++;
    this.variant(String(d.model), String(d.variant), String(d.version)).dropped++;
    return this.logDrop(why);
  }

  private logDrop(why: string): false {
    if (this.dropLog.ready()) log.warn('decisions: dropping decisions', { why, dropped: this.counts.dropped, pending: this.queuedN + this.inFlightN });
    return false;
  }

  private countDrop(c: DecisionChunk): void {
    this.counts.dropped += c.n;
    c.variants.forEach(([model, variant, version], i) => (this.variant(model, variant, version).dropped += c.variantCounts[i]!));
  }

  private variant(model: string, variant: string, version: string): Counts {
    const k = `${model}\u0000${variant}\u0000${version}`;
    let c = this.perVariant.get(k);
    if (!c) {
      c = { model, variant, version, logged: 0, dropped: 0 };
      this.perVariant.set(k, c);
    }
    return c;
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.backingOff = false;
  }

  /** Makes sure a write happens within `delayMs` (a full batch cuts a flush wait short, never a backoff). */
  private kick(delayMs: number, backoff = false): void {
    if (this.running || this.closed) return;
    if (this.timer) {
      if (delayMs > 0 || this.backingOff) return;
      this.clearTimer();
    }
    this.backingOff = backoff;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.backingOff = false;
      void this.exclusive(() => this.loop());
    }, delayMs);
    this.timer.unref?.();
  }

  /**
   * Runs `fn` as the one writer (`running` is set while it runs), then schedules the next
   * write for what is left: after flushMs, or after a backoff when the database was unreachable.
   */
  private exclusive(fn: () => Promise<boolean>): Promise<void> {
    const run = fn().then((ok) => {
      this.running = undefined;
      if (this.closed || this.queuedN === 0) return;
      if (ok) this.kick(this.opts.flushMs);
      else this.kick(this.backoff.next(), true);
    });
    this.running = run;
    return run;
  }

  /** Writes full batches while there are any; the rest waits for the flush timer. */
  private async loop(): Promise<boolean> {
    let ok = true;
    do {
      ok = await this.writeOne();
    } while (ok && this.queuedN >= this.opts.batchSize && !this.closed);
    return ok;
  }

  /** One batch: true when written (or dropped as unwritable), false when the database was unreachable (the batch is kept). */
  private async writeOne(): Promise<boolean> {
    let n = 0;
    let take = 0;
    while (take < this.queue.length && n < this.opts.batchSize) n += this.queue[take++]!.n;
    if (take === 0) return true;
    const batch = this.queue.splice(0, take);
    this.queuedN -= n;
    this.inFlight = batch;
    this.inFlightN = n;
    try {
      // Run again when aborted for a deadlock: the chunks' trigger updates experiment units
      // beside other replicas' writes and feedback (each INSERT is idempotent).
      await retryConflicts(() => insertDecisions(this.db, batch));
      this.counts.logged += n;
      for (const c of batch) c.variants.forEach(([model, variant, version], i) => (this.variant(model, variant, version).logged += c.variantCounts[i]!));
      this.forgetSingles(batch);
      this.remember(batch);
      this.backoff.reset();
      return true;
    } catch (e) {
      this.counts.failedBatches++;
      if (isUnavailable(e) || isStorageFull(e) || isConflict(e)) {
        this.queue = batch.concat(this.queue);
        this.queuedN += n;
        if (this.failLog.ready()) log.warn('decisions: database unreachable (or deadlocked), buffering', { pending: this.queuedN, ...errorFields(e) });
        return false;
      }
      // A batch the database refuses for another reason would be refused forever: drop it.
      log.error('decisions: batch refused by the database, dropped', { rows: n, ...errorFields(e) });
      for (const c of batch) this.countDrop(c);
      this.forgetSingles(batch);
      releaseChunks(batch);
      return true;
    } finally {
      this.inFlight = [];
      this.inFlightN = 0;
    }
  }

  /** Single decisions leave `singles` once their chunk is written or dropped. */
  private forgetSingles(batch: DecisionChunk[]): void {
    if (this.singles.size === 0) return;
    for (const c of batch) if (c.single !== undefined) this.singles.delete(c.single);
  }
}

/** The memory a chunk holds: its buffers whole (a thread chunk's are pooled buffers, up to twice its bytes). */
function chunkBytes(c: DecisionChunk): number {
  return c.rows.buffer.byteLength + c.contexts.buffer.byteLength + c.dir.buffer.byteLength;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
