/**
 * The model table: which generation of each model is active (its default version), and which
 * route generation is in force for it, in a SharedArrayBuffer that every thread can read. Activating a version is one `Atomics.store` of its generation; a request
 * reads the generation once (`Atomics.load`) and keeps that version for its whole life, so a
 * swap never splits a request or a batch between versions.
 *
 * Routes are published the same way: a thread installs the route object under its generation,
 * then one `Atomics.store` in the model's route slot puts it in force for every thread (0: no
 * route, unversioned requests go to the default version).
 *
 * Generations are unique for the life of the engine (never reused, one counter for versions and
 * routes), so a stale generation can never name a different version or route.
 */
export const NO_GENERATION = 0;

export class ModelTable {
  readonly buffer: SharedArrayBuffer;
  private readonly active: Int32Array;
  private readonly routes: Int32Array;
  private readonly slots = new Map<string, number>();
  private nextGen = 1;

  constructor(readonly capacity = 4096) {
    this.buffer = new SharedArrayBuffer(2 * capacity * Int32Array.BYTES_PER_ELEMENT);
    this.active = new Int32Array(this.buffer, 0, capacity);
    this.routes = new Int32Array(this.buffer, capacity * Int32Array.BYTES_PER_ELEMENT, capacity);
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
    Atomics.store(this.routes, slot, NO_GENERATION);
  }

  routeGeneration(slot: number): number {
    return Atomics.load(this.routes, slot);
  }

  /** Puts route `gen` in force for the model (NO_GENERATION: back to the default version). */
  setRoute(slot: number, gen: number): void {
    Atomics.store(this.routes, slot, gen);
  }
}

/** A thread's read-only view of the model table (every I/O thread has one over the same buffer). */
export class TableView {
  private readonly active: Int32Array;
  private readonly routes: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    const capacity = buffer.byteLength / (2 * Int32Array.BYTES_PER_ELEMENT);
    this.active = new Int32Array(buffer, 0, capacity);
    this.routes = new Int32Array(buffer, capacity * Int32Array.BYTES_PER_ELEMENT, capacity);
  }

  activeGeneration(slot: number): number {
    return Atomics.load(this.active, slot);
  }

  routeGeneration(slot: number): number {
    return Atomics.load(this.routes, slot);
  }
}
