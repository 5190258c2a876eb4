/**
 * The dispatch board: how batches reach pool workers without a thread wake-up per batch.
 *
 * Measured here (bench/handoff.ts), waking a sleeping thread costs ~100 us each way on this
 * VM, with a long tail, while a thread that is already awake picks up shared-memory work in
 * well under a microsecond; piscina.run pays a wake-up per task. So each worker runs one
 * long-lived piscina task, a *session*, that serves the board: the I/O thread posts a batch by
 * flipping its board entry to QUEUED and ringing the doorbell; a session claims the entry with
 * a compare-exchange, computes it in place in the arena, and marks it DONE or FAILED. An idle
 * session polls for `spinUs`, then parks on the doorbell (Atomics.wait). Under load no batch
 * pays for a wake-up. Piscina still owns the threads: it starts them, replaces a crashed one
 * (whose session then restarts), and ends them.
 *
 * Int32 layout of the board SharedArrayBuffer:
 *   [0] completion counter 0 (workers add and notify; the producer that owns it waits on it)
 *   [1] entries in state QUEUED (claimable work)
 *   [2] control epoch (bumped after each control message, so sessions yield to their event
 *       loop and receive it)
 *   [3] doorbell (bumped and notified when work or control arrives; parked sessions wait on it)
 *   [4] stop flag (1 = sessions return, at shutdown)
 *   [5] which completion counters are taken (bit c = counter c)
 *   [6..15] completion counters 1..10
 *   [16 + 3e] entry e state: FREE 0, QUEUED 1, DONE 2, FAILED 3, RUNNING 4 | threadId << 4,
 *             LOST 5 (its worker died, or the pool stopped before running it)
 *   [17 + 3e] entry e arena slot offset
 *   [18 + 3e] entry e owner: the completion counter of the producer that owns it
 *
 * Entries are allocated by the pool (main thread); the producer of each entry is one
 * BoardClient (board-client.ts) in whichever thread owns the entry's arena slot. Each client
 * takes a completion counter of its own, so a completion wakes only the thread waiting for it
 * (past COUNTERS clients, counters are shared: a wake-up is then only sometimes for nothing).
 */
export const B_DONE = 0;
export const B_QUEUED = 1;
export const B_EPOCH = 2;
export const B_BELL = 3;
export const B_STOP = 4;
const B_COUNTERS = 5;
const HEADER_INTS = 16;
const ENTRY_INTS = 3;
/** Completion counters: [0] and [6..15]. */
export const COUNTERS = 11;

export const S_FREE = 0;
export const S_QUEUED = 1;
export const S_DONE = 2;
export const S_FAILED = 3;
export const S_RUNNING = 4;
export const S_LOST = 5;

export function stateIndex(entry: number): number {
  return HEADER_INTS + entry * ENTRY_INTS;
}

export function slotIndex(entry: number): number {
  return HEADER_INTS + entry * ENTRY_INTS + 1;
}

export function ownerIndex(entry: number): number {
  return HEADER_INTS + entry * ENTRY_INTS + 2;
}

/** Board index of completion counter `counter`. */
export function doneIndex(counter: number): number {
  return counter === 0 ? B_DONE : B_COUNTERS + counter;
}

/** Producer side: takes the lowest free completion counter, or returns -1 when all are taken. */
export function takeCounter(board: Int32Array): number {
  for (;;) {
    const taken = Atomics.load(board, B_COUNTERS);
    let c = 0;
    while (c < COUNTERS && (taken & (1 << c)) !== 0) c++;
    if (c === COUNTERS) return -1;
    if (Atomics.compareExchange(board, B_COUNTERS, taken, taken | (1 << c)) === taken) return c;
  }
}

export function releaseCounter(board: Int32Array, counter: number): void {
  Atomics.and(board, B_COUNTERS, ~(1 << counter));
}

/** Adds one to a completion counter and wakes whoever waits on it. */
function bump(board: Int32Array, counter: number): void {
  const at = doneIndex(counter);
  Atomics.add(board, at, 1);
  Atomics.notify(board, at);
}

export function boardBytes(entries: number): number {
  return (HEADER_INTS + entries * ENTRY_INTS) * Int32Array.BYTES_PER_ELEMENT;
}

/** The RUNNING state word of an entry claimed by `threadId`. */
export function running(threadId: number): number {
  return S_RUNNING | (threadId << 4);
}

/**
 * Worker side: claims one QUEUED entry for `threadId`, or returns -1. Scans only when the
 * queued counter says there is something to take.
 */
export function claim(board: Int32Array, entries: number, threadId: number): number {
  if (Atomics.load(board, B_QUEUED) <= 0) return -1;
  const mine = running(threadId);
  // Round robin from after the last entry this worker claimed: entries are handed out in index
  // order, so each I/O thread's slots sit in their own range, and a scan from 0 every time
  // served the lowest range first and starved the others (measured: a thread's requests to a
  // slow pooled model waited 5 s past their deadline).
  for (let i = 0; i < entries; i++) {
    const e = (cursor + i) % entries;
    const at = stateIndex(e);
    if (board[at] === S_QUEUED && Atomics.compareExchange(board, at, S_QUEUED, mine) === S_QUEUED) {
      Atomics.sub(board, B_QUEUED, 1);
      cursor = e + 1;
      return e;
    }
  }
  return -1;
}

/** Where this worker's next claim scan starts (module state: one per thread). */
let cursor = 0;

/** Worker side: publishes the outcome of a claimed entry and wakes its producer. */
export function complete(board: Int32Array, entry: number, ok: boolean): void {
  const owner = Atomics.load(board, ownerIndex(entry));
  Atomics.store(board, stateIndex(entry), ok ? S_DONE : S_FAILED);
  bump(board, owner);
}

/** I/O thread side: wakes `count` parked sessions (Atomics.notify is cheap with no waiters). */
export function ring(board: Int32Array, count = 1): void {
  Atomics.add(board, B_BELL, 1);
  Atomics.notify(board, B_BELL, count);
}

/**
 * Pool side, after worker threads died (or, with `queuedToo`, when the pool stops): marks LOST
 * every entry RUNNING on a thread for which `dead(threadId)` holds (and every QUEUED entry),
 * and wakes the producers, whichever thread they are in. The pool does this itself, at once,
 * because only it knows for certain which threads are dead: a list of live threads sent to
 * another thread can be older than a replacement worker that has since claimed an entry.
 * Returns how many entries it marked.
 */
export function markLost(board: Int32Array, entries: number, dead: (threadId: number) => boolean, queuedToo = false): number {
  let lost = 0;
  let owners = 0;
  for (let e = 0; e < entries; e++) {
    const at = stateIndex(e);
    const state = Atomics.load(board, at);
    let marked = false;
    if ((state & 0xf) === S_RUNNING && dead(state >>> 4)) {
      // The compare-exchange fails only if the producer settled the entry meanwhile.
      marked = Atomics.compareExchange(board, at, state, S_LOST) === state;
    } else if (queuedToo && state === S_QUEUED && Atomics.compareExchange(board, at, S_QUEUED, S_LOST) === S_QUEUED) {
      Atomics.sub(board, B_QUEUED, 1);
      marked = true;
    }
    if (marked) {
      lost++;
      owners |= 1 << Atomics.load(board, ownerIndex(e));
    }
  }
  for (let c = 0; c < COUNTERS; c++) if ((owners & (1 << c)) !== 0) bump(board, c);
  return lost;
}
