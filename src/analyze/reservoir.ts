/**
 * A fixed-size uniform sample of a stream (Vitter's Algorithm R), seeded so a run can be replayed.
 * After `seen` values every one of them is in the sample with probability capacity / seen, so the
 * sample stands for the whole stream (for example a version's reference window, or a recent window
 * that is reset periodically) in O(capacity) memory. ks.ts tests two of them against each other.
 */
import { SluiceError } from '../errors.js';
import { mulberry32 } from '../random.js';

export class Reservoir {
  private readonly sample: Float64Array;
  private readonly random: () => number;
  private n = 0;

  constructor(readonly capacity: number, readonly seed: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new SluiceError('INVALID_ARGUMENT', `reservoir: capacity ${capacity} must be an integer >= 1`);
    if (!Number.isInteger(seed)) throw new SluiceError('INVALID_ARGUMENT', `reservoir: seed ${seed} must be an integer`);
    this.sample = new Float64Array(capacity);
    this.random = mulberry32(seed);
  }

  /** Values offered so far. */
  get seen(): number {
    return this.n;
  }

  /** Values held: min(seen, capacity). */
  get size(): number {
    return Math.min(this.n, this.capacity);
  }

  /** Offers a value; NaN (missing) is not sampled, so every held value is usable. */
  add(x: number): void {
    if (typeof x !== 'number') throw new SluiceError('INVALID_ARGUMENT', 'reservoir: value is not a number');
    if (Number.isNaN(x)) return;
    if (this.n < this.capacity) {
      this.sample[this.n] = x;
    } else {
      // Keep the new value with probability capacity / (n + 1), in place of a uniformly chosen one.
      const j = Math.floor(this.random() * (this.n + 1));
      if (j < this.capacity) this.sample[j] = x;
    }
    this.n++;
  }

  /** A copy of the held values (in slot order, not stream order). */
  values(): Float64Array {
    return this.sample.slice(0, this.size);
  }

  /** Empties the sample (the random sequence goes on: a new window is not a replay of the old one). */
  clear(): void {
    this.n = 0;
  }
}
