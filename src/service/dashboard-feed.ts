/**
 * One I/O thread's side of the dashboard: its viewers (live streams, whatever the transport)
 * and one timer that, while at least one is connected, asks the control plane for the snapshot
 * once per interval (src/service/dashboard.ts) and hands the same text to each viewer. No viewer,
 * no timer: the thread asks nothing.
 *
 * The number of viewers is capped for the whole server: every thread takes a slot from one
 * counter in shared memory (`ViewerSlots`), so the cap holds however the kernel spreads the
 * connections over the threads.
 */
import { SluiceError, toSluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';

/** A heartbeat comment keeps proxies from closing a quiet stream (and shows a dead one). */
export const HEARTBEAT_MS = 15_000;

/** A transport's viewer: what the feed sends it. */
export interface Viewer {
  /** A snapshot (JSON text). The viewer may drop it (a slow client). */
  snapshot(json: string): void;
  /** The snapshot could not be built (sent so the page can say so). */
  problem(code: string, message: string): void;
  heartbeat(): void;
  /** The server is stopping: end the stream. */
  end(): void;
}

/** Slots for viewers shared by every I/O thread (an Int32 counter in a SharedArrayBuffer). */
export class ViewerSlots {
  private readonly count: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4), readonly max = 16) {
    this.count = new Int32Array(buffer);
  }

  /** Takes a slot, or returns false when all `max` are taken. */
  take(): boolean {
    for (;;) {
      const n = Atomics.load(this.count, 0);
      if (n >= this.max) return false;
      if (Atomics.compareExchange(this.count, 0, n, n + 1) === n) return true;
    }
  }

  give(): void {
    Atomics.sub(this.count, 0, 1);
  }

  /** Slots taken on every thread. */
  get taken(): number {
    return Atomics.load(this.count, 0);
  }
}

export class DashboardFeed {
  private readonly viewers = new Set<Viewer>();
  private timer: NodeJS.Timeout | undefined;
  private beat: NodeJS.Timeout | undefined;
  private latest: { at: number; json: string } | undefined;
  private fetching: Promise<void> | undefined;
  private closed = false;

  constructor(
    /** The control plane's snapshot (directly on the main thread, by message elsewhere). */
    private readonly source: () => Promise<string>,
    readonly slots: ViewerSlots,
    private readonly intervalMs: number,
  ) {}

  /** Viewers on this thread. */
  get size(): number {
    return this.viewers.size;
  }

  /**
   * Adds a viewer (a slot must have been taken for it: `slots.take()`), sends it the latest
   * snapshot at once (a fresh one if the last is older than the interval), and returns its
   * removal, which gives the slot back (call it once, when the stream ends).
   */
  join(v: Viewer): () => void {
    if (this.closed) throw new SluiceError('SHUTTING_DOWN', 'the server is stopping');
    this.viewers.add(v);
    if (this.viewers.size === 1) this.startTimers();
    if (this.latest && Date.now() - this.latest.at < this.intervalMs) v.snapshot(this.latest.json);
    else void this.refresh();
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.viewers.delete(v);
      this.slots.give();
      if (this.viewers.size === 0) this.stopTimers();
    };
  }

  /** Ends every stream (the server drains: these never finish by themselves). */
  close(): void {
    this.closed = true;
    this.stopTimers();
    for (const v of [...this.viewers]) v.end();
  }

  private startTimers(): void {
    this.timer = setInterval(() => void this.refresh(), this.intervalMs);
    this.beat = setInterval(() => {
      for (const v of this.viewers) v.heartbeat();
    }, HEARTBEAT_MS);
  }

  private stopTimers(): void {
    clearInterval(this.timer);
    clearInterval(this.beat);
    this.timer = this.beat = undefined;
    // Nobody watches: what was seen last is stale by the time anyone comes back.
    this.latest = undefined;
  }

  /** Asks for the snapshot (one request at a time) and sends it to every viewer. */
  private refresh(): Promise<void> {
    this.fetching ??= this.source().then(
      (json) => {
        if (this.viewers.size === 0) return;
        this.latest = { at: Date.now(), json };
        for (const v of this.viewers) v.snapshot(json);
      },
      (e: unknown) => {
        const err = toSluiceError(e);
        if (err.code !== 'SHUTTING_DOWN') log.warn('dashboard: snapshot failed', errorFields(e));
        for (const v of this.viewers) v.problem(err.code, err.message);
      },
    ).finally(() => {
      this.fetching = undefined;
    });
    return this.fetching;
  }
}
