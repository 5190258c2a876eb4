/**
 * Learned state published by one writer (the control plane's learner) to readers on every I/O
 * thread, through shared memory: the hot swap of DESIGN.md applied to online learning. Serving
 * never waits on learning and never sees a half-written state.
 *
 * Two slots of `length` doubles and a header. The writer fills the slot that is not current,
 * then makes it current with one atomic store. Each slot has a sequence number, odd while it is
 * written: a reader notes the sequence of the slot it reads before and after its computation and
 * computes again if it moved (the writer wrote the same slot twice during one read: a reader
 * preempted for two publications). Readers take no lock and the writer never waits for them.
 *
 * Each slot also carries its `state` (updates applied to compute it) and `events` (feedback
 * events they included), so that every answer can say which state computed it.
 */

/** Header Int32 words: [current slot, seq of slot 0, seq of slot 1]. */
const CURRENT = 0;
const SEQ = 1;
const HEADER_BYTES = 16;
/** Per slot, before its data: state, events (float64 each: exact to 2^53). */
const META = 2;

export interface StateView {
  /** The slot's data (a view on shared memory: read it, never keep it past the read). */
  data: Float64Array;
  state: number;
  events: number;
  /** Pass back to `stable` after computing. */
  seq: number;
  slot: number;
}

export class StateCell {
  readonly buffer: SharedArrayBuffer;
  readonly length: number;
  private readonly header: Int32Array;
  private readonly slots: Float64Array[];
  private readonly metas: Float64Array[];

  /** A new cell of `length` doubles (both slots zero, state 0), or a view of an existing buffer. */
  constructor(lengthOrBuffer: number | SharedArrayBuffer) {
    if (typeof lengthOrBuffer === 'number') {
      this.length = lengthOrBuffer;
      this.buffer = new SharedArrayBuffer(HEADER_BYTES + 2 * 8 * (META + lengthOrBuffer));
    } else {
      this.buffer = lengthOrBuffer;
      this.length = (lengthOrBuffer.byteLength - HEADER_BYTES) / 16 - META;
    }
    const slotBytes = 8 * (META + this.length);
    this.header = new Int32Array(this.buffer, 0, 4);
    this.metas = [0, 1].map((s) => new Float64Array(this.buffer, HEADER_BYTES + s * slotBytes, META));
    this.slots = [0, 1].map((s) => new Float64Array(this.buffer, HEADER_BYTES + s * slotBytes + 8 * META, this.length));
  }

  /** Writer only: publishes `data` (length doubles) as the current state. */
  publish(data: Float64Array, state: number, events: number): void {
    if (data.length !== this.length) throw new RangeError(`state has ${data.length} values, the cell holds ${this.length}`);
    const slot = 1 - Atomics.load(this.header, CURRENT);
    Atomics.add(this.header, SEQ + slot, 1); // odd: being written
    this.slots[slot]!.set(data);
    const meta = this.metas[slot]!;
    meta[0] = state;
    meta[1] = events;
    Atomics.add(this.header, SEQ + slot, 1); // even: complete
    Atomics.store(this.header, CURRENT, slot);
  }

  /** The current state. Compute from it, then call `stable(view)`: if false, read again. */
  read(): StateView {
    for (;;) {
      const slot = Atomics.load(this.header, CURRENT);
      const seq = Atomics.load(this.header, SEQ + slot);
      // Odd: the writer is filling this slot (it became current and is being overwritten two
      // publications later); the other slot is then the complete one, read again.
      if ((seq & 1) === 0) {
        const meta = this.metas[slot]!;
        return { data: this.slots[slot]!, state: meta[0]!, events: meta[1]!, seq, slot };
      }
    }
  }

  /** Whether the slot `view` read was not written while it was read. */
  stable(view: StateView): boolean {
    return Atomics.load(this.header, SEQ + view.slot) === view.seq;
  }

  /** The current state's counters without its data. */
  counters(): { state: number; events: number } {
    const v = this.read();
    return { state: v.state, events: v.events };
  }
}
