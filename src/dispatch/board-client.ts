/**
 * The producer side of the dispatch board (board.ts), usable in any thread: the main thread's
 * pool has one, and each I/O thread can run its own over the same board and arena, for the
 * arena slots it owns. Piscina stays with the main thread's WorkerPool, which allocates the
 * board entries; a client only needs the shared buffers.
 *
 * `run` marks a slot's entry QUEUED and rings the doorbell; a worker session claims it,
 * computes the batch in place and marks it DONE or FAILED; the client learns of completions by
 * polling for a short spin window, then through `Atomics.waitAsync` on its completion counter
 * (each client takes its own, see board.ts, so other threads' completions do not wake it).
 * Entries whose worker died are marked LOST by the pool (board.ts markLost) and fail here with
 * WORKER_LOST (SHUTTING_DOWN once the pool has stopped).
 */
import { threadId } from 'node:worker_threads';
import { SluiceError } from '../errors.js';
import { B_QUEUED, B_STOP, COUNTERS, doneIndex, ownerIndex, releaseCounter, ring, S_DONE, S_FAILED, S_FREE, S_LOST, S_QUEUED, S_RUNNING, slotIndex, stateIndex, takeCounter } from './board.js';
import { readSlotError } from './slot-layout.js';

export interface BoardClientOptions {
  board: SharedArrayBuffer;
  arena: SharedArrayBuffer;
  boardEntries: number;
  /** How long (us) to poll for completions after a dispatch before waiting on the counter. */
  spinUs: number;
}

interface PendingBatch {
  slot: number;
  resolve: () => void;
  reject: (e: SluiceError) => void;
}

/** Safety net: look for completions this often even if a notification was missed. */
const SCAN_INTERVAL_MS = 20;

function lostError(stopping: boolean): SluiceError {
  return stopping
    ? new SluiceError('SHUTTING_DOWN', 'engine is shutting down')
    : new SluiceError('WORKER_LOST', 'the worker running this request died; it was replaced, retry the request');
}

export class BoardClient {
  private readonly board: Int32Array;
  private readonly arena: SharedArrayBuffer;
  private readonly boardEntries: number;
  private readonly spinMs: number;
  /** Board entry of each attached arena slot. */
  private readonly entryOf = new Map<number, number>();
  /** Batches queued or running, by board entry. */
  private readonly batches = new Map<number, PendingBatch>();
  private armed = false;
  private polling = false;
  private pollUntil = 0;
  private safetyTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** This client's completion counter (entries it attaches name it as their owner). */
  private readonly counter: number;
  private readonly ownsCounter: boolean;
  /** Board index of the counter. */
  private readonly doneAt: number;

  constructor(opts: BoardClientOptions) {
    this.board = new Int32Array(opts.board);
    this.arena = opts.arena;
    this.boardEntries = opts.boardEntries;
    this.spinMs = opts.spinUs / 1000;
    const taken = takeCounter(this.board);
    this.ownsCounter = taken >= 0;
    this.counter = taken >= 0 ? taken : threadId % COUNTERS;
    this.doneAt = doneIndex(this.counter);
  }

  /** Batches queued or running. */
  get pending(): number {
    return this.batches.size;
  }

  /** Dispatches batches in arena slot `slot` through board entry `entry` (allocated by the pool). */
  attach(slot: number, entry: number): void {
    if (!Number.isInteger(entry) || entry < 0 || entry >= this.boardEntries) {
      throw new SluiceError('INTERNAL', `board entry ${entry} is outside the board (${this.boardEntries} entries)`);
    }
    this.entryOf.set(slot, entry);
    Atomics.store(this.board, slotIndex(entry), slot);
    Atomics.store(this.board, ownerIndex(entry), this.counter);
    Atomics.store(this.board, stateIndex(entry), S_FREE);
  }

  /** Forgets a slot's entry (its version is freed; the pool takes the entry back). */
  detach(slot: number): void {
    this.entryOf.delete(slot);
  }

  /** Runs the batch in arena slot `slot`; rejects with the batch's coded error. */
  run(slot: number): Promise<void> {
    if (this.closed || Atomics.load(this.board, B_STOP) !== 0) return Promise.reject(new SluiceError('SHUTTING_DOWN', 'engine is shutting down'));
    const e = this.entryOf.get(slot);
    if (e === undefined) return Promise.reject(new SluiceError('INTERNAL', 'arena slot has no board entry'));
    return new Promise<void>((resolve, reject) => {
      this.batches.set(e, { slot, resolve, reject });
      Atomics.store(this.board, stateIndex(e), S_QUEUED);
      Atomics.add(this.board, B_QUEUED, 1);
      ring(this.board);
      this.arm();
    });
  }

  /**
   * Blocks this thread (Atomics.wait) until the batch in `slot` is done or failed, for at most
   * `us` microseconds; when it finished, settles it at once, so that its callbacks run in the
   * microtask queue of the current turn. Returns whether it finished. For HTTP/1.1 (see
   * InferRequest.blockUs): uWebSockets.js closes a connection whose next pipelined request it
   * parses while an earlier answer is still pending, so that answer must be sent before the
   * request handler returns.
   */
  waitSync(slot: number, us: number): boolean {
    const e = this.entryOf.get(slot);
    if (e === undefined || !this.batches.has(e)) return false;
    const until = performance.now() + us / 1000;
    for (;;) {
      const seen = Atomics.load(this.board, this.doneAt);
      const state = Atomics.load(this.board, stateIndex(e));
      if (state === S_DONE || state === S_FAILED || state === S_LOST) {
        this.scan();
        return true;
      }
      const left = until - performance.now();
      if (left <= 0) return false;
      // Woken by any completion of this client's (the counter moves); re-check this entry.
      Atomics.wait(this.board, this.doneAt, seen, left);
    }
  }

  /**
   * Fails this client's batches whose worker died: entries the pool marked LOST, and entries
   * RUNNING on a thread missing from `alive` (the pool's live worker threads) that is older
   * than one in it. A thread id newer than all of `alive` may be a replacement worker started
   * after the list was taken, so only the pool's mark decides for it (thread ids only grow).
   * With `closing`, the batches fail with SHUTTING_DOWN instead of WORKER_LOST. Returns how
   * many batches failed.
   */
  reap(alive: ReadonlySet<number>, closing: boolean): number {
    let newest = -1;
    for (const id of alive) newest = Math.max(newest, id);
    const stopping = closing || Atomics.load(this.board, B_STOP) !== 0;
    let lost = 0;
    for (const [e, b] of [...this.batches]) {
      const state = Atomics.load(this.board, stateIndex(e));
      const thread = state >>> 4;
      const dead = state === S_LOST || ((state & 0xf) === S_RUNNING && !alive.has(thread) && thread < newest);
      if (!dead) continue;
      this.settle(e);
      lost++;
      b.reject(lostError(stopping));
    }
    this.idleCheck();
    return lost;
  }

  /**
   * Rejects every pending batch with `err` and stops watching. A batch a worker is still
   * running is left to finish in its slot (its entry is not reused until the pool takes it
   * back); a queued one is withdrawn from the board.
   */
  close(err: SluiceError): void {
    // The counter goes back once only: by a second close another client may have taken it.
    if (this.ownsCounter && !this.closed) releaseCounter(this.board, this.counter);
    this.closed = true;
    for (const [e, b] of [...this.batches]) {
      const at = stateIndex(e);
      if (Atomics.compareExchange(this.board, at, S_QUEUED, S_FREE) === S_QUEUED) {
        Atomics.sub(this.board, B_QUEUED, 1);
      } else {
        const state = Atomics.load(this.board, at);
        if (state === S_DONE || state === S_FAILED || state === S_LOST) Atomics.store(this.board, at, S_FREE);
      }
      this.batches.delete(e);
      b.reject(err);
    }
    this.idleCheck();
  }

  /**
   * Watches for completions. For up to the spin window after a dispatch, the board is polled
   * once per event-loop turn (setImmediate keeps the loop awake without blocking I/O), because
   * a sleeping I/O thread pays the same wake-up cost as a sleeping worker. After that it waits
   * on the completion counter with Atomics.waitAsync.
   */
  private arm(): void {
    if (this.batches.size === 0) return;
    // Here, not in armWait: a wait still pending from earlier batches must not leave new ones
    // without the safety net.
    this.safetyTimer ??= setInterval(() => this.scan(), SCAN_INTERVAL_MS);
    this.pollUntil = performance.now() + this.spinMs;
    if (!this.polling && this.spinMs > 0) {
      this.polling = true;
      setImmediate(this.poll);
    }
    this.armWait();
  }

  private readonly poll = (): void => {
    this.scan();
    if (this.batches.size > 0 && performance.now() < this.pollUntil) {
      setImmediate(this.poll);
    } else {
      this.polling = false;
    }
  };

  /** Waits (without blocking) for the next completion, then settles finished batches. */
  private armWait(): void {
    if (this.armed || this.batches.size === 0) return;
    this.armed = true;
    const seen = Atomics.load(this.board, this.doneAt);
    const w = Atomics.waitAsync(this.board, this.doneAt, seen);
    const wake = () => {
      this.armed = false;
      this.scan();
      this.armWait();
    };
    if (w.async) void w.value.then(wake);
    else queueMicrotask(wake);
  }

  private scan(): void {
    for (const [e, b] of this.batches) {
      const state = Atomics.load(this.board, stateIndex(e));
      if (state === S_DONE) {
        this.settle(e);
        b.resolve();
      } else if (state === S_FAILED) {
        const err = readSlotError(this.arena, b.slot);
        this.settle(e);
        b.reject(err);
      } else if (state === S_LOST) {
        this.settle(e);
        b.reject(lostError(Atomics.load(this.board, B_STOP) !== 0));
      }
    }
    this.idleCheck();
  }

  /** With nothing pending, no timer may keep the thread alive. */
  private idleCheck(): void {
    if (this.batches.size === 0 && this.safetyTimer) {
      clearInterval(this.safetyTimer);
      this.safetyTimer = undefined;
    }
  }

  private settle(e: number): void {
    this.batches.delete(e);
    Atomics.store(this.board, stateIndex(e), S_FREE);
  }
}
