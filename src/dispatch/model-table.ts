/**
 * The model table: which generation of each model is active, in a SharedArrayBuffer that every
 * thread can read. Activating a version is one `Atomics.store` of its generation; a request
 * reads the generation once (`Atomics.load`) and keeps that version for its whole life, so a
 * swap never splits a request or a batch between versions.
 *
 * Generations are unique for the life of the engine (never reused), so a stale generation can
 * never name a different version.
 */
export const NO_GENERATION = 0;

export class ModelTable {
  readonly buffer: SharedArrayBuffer;
  private readonly active: Int32Array;
  private readonly slots = new Map<string, number>();
  private nextGen = 1;

  constructor(readonly capacity = 4096) {
    this.buffer = new SharedArrayBuffer(capacity * Int32Array.BYTES_PER_ELEMENT);
    this.active = new Int32Array(this.buffer);
  }

  /** The table slot of a model name, assigned on first use and kept for the engine's life. */
  slotOf(name: string): number {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = this.slots.size;
      if (s >= this.capacity) throw new Error(`model table is full (${this.capacity} models)`);
      this.slots.set(name, s);
    }
    return s;
  }

  /** A fresh generation number for a version being loaded. */
  newGeneration(): number {
    if (this.nextGen >= 0x7fffffff) throw new Error('generation counter exhausted');
    return this.nextGen++;
  }

  activeGeneration(slot: number): number {
    return Atomics.load(this.active, slot);
  }

  /** Makes `gen` the version new requests get: the single atomic store of a hot swap. */
  activate(slot: number, gen: number): void {
    Atomics.store(this.active, slot, gen);
  }

  deactivate(slot: number): void {
    Atomics.store(this.active, slot, NO_GENERATION);
  }
}

/** A thread's read-only view of the model table (every I/O thread has one over the same buffer). */
export class TableView {
  private readonly active: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.active = new Int32Array(buffer);
  }

  activeGeneration(slot: number): number {
    return Atomics.load(this.active, slot);
  }
}
