/**
 * Reused buffers for request bodies. A fresh 400 kB buffer per binary request (1,024 rows
 * of 100 floats) cost the server more in garbage collection than in all its other work: 28% of
 * its time at 500 requests/s, as V8 collects more often the faster external memory is allocated.
 * Small bodies gain too: Buffer.allocUnsafe carves them from an 8 kB slab, and a new slab every
 * few 2 kB requests (a fresh ArrayBuffer, ~5 us each in a V8 profile under load) cost ~1.5 us
 * per single-row JSON request. A body comes from here when its Content-Length is known, and goes
 * back once its request has been answered: the engine keeps no reference to a request's tensors
 * after `infer()` settles, and replies are copied out before that.
 */

import { SizeClassPool } from '../../size-class-pool.js';

/** Smallest size class: every body up to this size shares it. */
const MIN_CLASS = 4 * 1024;
/** Largest body kept for reuse (bigger ones are rare: uploads, huge batches). */
const MAX_POOLED = 16 * 1024 * 1024;

export class BodyPool {
  /** allocUnsafeSlow: a buffer of its own (never a slice of Node's shared slab), offset 0. */
  private readonly pool: SizeClassPool<Buffer>;

  /** `maxRetained` bounds the bytes kept idle across all size classes. */
  constructor(maxRetained = 64 * 1024 * 1024) {
    this.pool = new SizeClassPool((size) => Buffer.allocUnsafeSlow(size), maxRetained, MIN_CLASS);
  }

  /** Bytes idle in the pool. */
  get idleBytes(): number {
    return this.pool.idleBytes;
  }

  /**
   * A buffer of at least `bytes` (its contents are garbage), and whether it must be given back
   * with `give` when done (false: a plain allocation, left to the garbage collector).
   */
  take(bytes: number): { buf: Buffer; pooled: boolean } {
    if (bytes > MAX_POOLED) return { buf: Buffer.allocUnsafe(bytes), pooled: false };
    return { buf: this.pool.take(bytes), pooled: true };
  }

  /** Gives back a buffer from `take` that nothing refers to any more. */
  give(buf: Buffer): void {
    this.pool.give(buf);
  }
}
