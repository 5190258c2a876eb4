/**
 * The tensor arena: one SharedArrayBuffer shared with every pool worker (passed once, at worker
 * start), carved into regions for pooled model versions. Batches are written into a region by
 * the I/O thread and read in place by a worker; outputs come back the same way.
 *
 * Regions are allocated when a version loads and freed when it is reclaimed, so allocation is
 * rare and a first-fit free list with coalescing is plenty. The arena's size is fixed
 * (SLUICE_ARENA_MB): memory for tensors in flight is bounded by configuration, not by load.
 */
export const ARENA_ALIGN = 64;

export function alignUp(n: number, a = ARENA_ALIGN): number {
  return Math.ceil(n / a) * a;
}

interface FreeBlock {
  offset: number;
  size: number;
}

export class Arena {
  readonly buffer: SharedArrayBuffer;
  private free: FreeBlock[];
  private readonly used = new Map<number, number>();

  constructor(bytes: number) {
    const size = alignUp(bytes);
    this.buffer = new SharedArrayBuffer(size);
    this.free = [{ offset: 0, size }];
  }

  get size(): number {
    return this.buffer.byteLength;
  }

  get bytesInUse(): number {
    let n = 0;
    for (const s of this.used.values()) n += s;
    return n;
  }

  /** Reserves `bytes` (64-byte aligned); undefined when no free block is large enough. */
  alloc(bytes: number): number | undefined {
    const size = alignUp(Math.max(bytes, 1));
    const i = this.free.findIndex((b) => b.size >= size);
    if (i < 0) return undefined;
    const block = this.free[i]!;
    const offset = block.offset;
    if (block.size === size) this.free.splice(i, 1);
    else this.free[i] = { offset: block.offset + size, size: block.size - size };
    this.used.set(offset, size);
    return offset;
  }

  /** Returns a region to the free list, merging it with free neighbours. */
  release(offset: number): void {
    const size = this.used.get(offset);
    if (size === undefined) throw new Error(`arena: ${offset} is not an allocated region`);
    this.used.delete(offset);
    let i = 0;
    while (i < this.free.length && this.free[i]!.offset < offset) i++;
    this.free.splice(i, 0, { offset, size });
    // Merge with the next block, then with the previous one.
    const next = this.free[i + 1];
    if (next && offset + size === next.offset) {
      this.free[i]!.size += next.size;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.offset + prev.size === offset) {
      prev.size += this.free[i]!.size;
      this.free.splice(i, 1);
    }
  }
}
