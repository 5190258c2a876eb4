/**
 * Reused shared memory for the decision log's bytes: a thread's chunks (their rows, contexts and
 * directories) and the parameters a batch of them is written with.
 *
 * Why shared and why reused: every chunk used to be new ArrayBuffers, moved from its I/O thread
 * to the main thread and, copied into new parameter buffers, on to the embedded database's
 * thread. V8 charges an ArrayBuffer's bytes to the isolate that holds it and counts them toward
 * the old generation's limit until the next full collection frees them; at tens of MB of
 * decisions a second that limit came every ~0.3 s on the main thread and more often on the
 * database's (`node --trace-gc` on a server logging 100 features per answer: 20 and 31
 * mark-compacts in 6 s, 107 and 196 ms of pauses, against 1 and 15 with these buffers).
 * A SharedArrayBuffer's bytes are charged to no isolate, so sharing them alone would leave their
 * memory to be freed whenever a full collection happened to run: the same run's process grew
 * to 1.2 GB in 30 s. So they are reused: a chunk's buffers go back to the pool of the thread
 * that made them once the log has written the chunk and no longer keeps it (releaseChunk), and a
 * batch's parameters to the writer's pool once the write has returned.
 *
 * Each thread has its own pool (`threadPool`); buffers come in power-of-two sizes (at least
 * 4 KB) and a pool keeps at most `maxFreeBytes` of them idle, dropping the rest to the collector.
 */
import { threadId } from 'node:worker_threads';
import { SizeClassPool } from '../size-class-pool.js';

export class SharedPool {
  private readonly pool: SizeClassPool<SharedArrayBuffer>;

  constructor(maxFreeBytes = 32 << 20) {
    this.pool = new SizeClassPool((size) => new SharedArrayBuffer(size), maxFreeBytes, 4096);
  }

  /** Buffers made because none of their size was idle (a figure for tests and benchmarks). */
  get made(): number {
    return this.pool.made;
  }

  /** `n` bytes at the start of a buffer of the pool's (its size: the next power of two >= n, at least 4 KB). Not zeroed. */
  take(n: number): Uint8Array {
    return new Uint8Array(this.pool.take(n), 0, n);
  }

  /** Takes a buffer back (one this pool made: of one of its sizes; anything else is ignored). */
  give(buf: ArrayBufferLike): void {
    if (buf instanceof SharedArrayBuffer) this.pool.give(buf);
  }

  get idleBytes(): number {
    return this.pool.idleBytes;
  }
}

/** This thread's pool. */
export const threadPool = new SharedPool();

/** This thread's id, as chunks name the pool their buffers belong to (DecisionChunk.origin). */
export const THIS_THREAD = threadId;

/**
 * Where buffers of another thread's pool go back: per thread id, a function that sends them
 * (the main thread registers one per I/O thread; see src/io/threads.ts).
 */
const senders = new Map<number, (bufs: SharedArrayBuffer[]) => void>();

export function registerPoolSender(thread: number, send: (bufs: SharedArrayBuffer[]) => void): () => void {
  senders.set(thread, send);
  return () => {
    if (senders.get(thread) === send) senders.delete(thread);
  };
}

/** Buffers to send back, per thread, until flushReleases(). */
const outgoing = new Map<number, SharedArrayBuffer[]>();

/**
 * Gives the buffers of a chunk made by `origin`'s pool back to it: at once when that is this
 * thread's, else at the next flushReleases() (one message per thread for many chunks). Buffers of
 * a thread that has gone (no sender) are left to the collector.
 */
export function releaseBuffers(origin: number | undefined, bufs: readonly Uint8Array[]): void {
  if (origin === undefined) return;
  if (origin === THIS_THREAD) {
    for (const b of bufs) threadPool.give(b.buffer);
    return;
  }
  if (!senders.has(origin)) return;
  let list = outgoing.get(origin);
  if (list === undefined) outgoing.set(origin, (list = []));
  for (const b of bufs) if (b.buffer instanceof SharedArrayBuffer) list.push(b.buffer);
}

/** Sends the buffers releaseBuffers() gathered for other threads. */
export function flushReleases(): void {
  for (const [thread, bufs] of outgoing) {
    if (bufs.length > 0) senders.get(thread)?.(bufs);
  }
  outgoing.clear();
}
