/**
 * Idle buffers kept for reuse by size class (powers of two from a minimum), up to a bound on the
 * bytes kept idle; what would pass the bound is left to the garbage collector. The request
 * bodies' pool (src/frontend/http/body-pool.ts) and the decision log's shared buffers
 * (src/learn/shared-pool.ts) are this with their own kind of buffer.
 */
export class SizeClassPool<B extends { readonly byteLength: number }> {
  /** Idle buffers by size. */
  private readonly free = new Map<number, B[]>();
  private idle = 0;
  /** Buffers made because none of their size was idle (a figure for tests and benchmarks). */
  made = 0;

  /** `make(size)` allocates a new buffer of exactly `size` bytes. */
  constructor(private readonly make: (size: number) => B, private readonly maxIdleBytes: number, private readonly minSize: number) {}

  /** Bytes idle in the pool. */
  get idleBytes(): number {
    return this.idle;
  }

  /** The size class of `n` bytes: the next power of two >= n, at least the minimum. */
  sizeFor(n: number): number {
    return n <= this.minSize ? this.minSize : 2 ** Math.ceil(Math.log2(n));
  }

  /** A buffer of `sizeFor(n)` bytes (contents are garbage): an idle one, else a new one. */
  take(n: number): B {
    const size = this.sizeFor(n);
    const idle = this.free.get(size)?.pop();
    if (idle !== undefined) {
      this.idle -= size;
      return idle;
    }
    this.made++;
    return this.make(size);
  }

  /** Takes back a buffer nothing refers to any more; one not of a size class is ignored. */
  give(buf: B): void {
    const size = buf.byteLength;
    if (size !== this.sizeFor(size) || this.idle + size > this.maxIdleBytes) return;
    let list = this.free.get(size);
    if (list === undefined) this.free.set(size, (list = []));
    list.push(buf);
    this.idle += size;
  }
}
