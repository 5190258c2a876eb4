/**
 * ADWIN, ADaptive WINdowing (Bifet & Gavaldà 2007): a change detector over a stream of numbers.
 * It keeps a window of recent values in exponential-histogram buckets and reports a change when
 * two sub-windows' means differ by more than the Hoeffding/Bernstein bound allows; the older part
 * is then dropped.
 *
 * This follows River's implementation (river.drift.ADWIN, 0.26: rust_src/adwin.rs and
 * river/drift/adwin.py) step for step, in the same floating-point order, so detections match it
 * exactly (test/learn/adwin.test.ts replays River's runs from test/fixtures/stats). Like River,
 * the update after a detection starts from an empty window.
 */
import { SluiceError } from '../errors.js';

export interface AdwinOptions {
  /** Significance: smaller means fewer false alarms and later detections. */
  delta: number;
  /** Checks for a change every `clock` values (1 = every value). */
  clock: number;
  /** Buckets of one size kept before the two oldest merge. */
  maxBuckets: number;
  /** Sub-windows shorter than this are never compared. */
  minWindowLength: number;
  /** No check until the window holds more than this many values. */
  gracePeriod: number;
}

/** River's defaults. */
export const ADWIN_DEFAULTS: Readonly<AdwinOptions> = Object.freeze({ delta: 0.002, clock: 32, maxBuckets: 5, minWindowLength: 5, gracePeriod: 10 });

/** One row of the exponential histogram: up to maxBuckets + 1 summaries of 2^row values each, oldest first. */
class BucketRow {
  readonly totals: Float64Array;
  readonly variances: Float64Array;
  used = 0;

  constructor(maxBuckets: number) {
    this.totals = new Float64Array(maxBuckets + 1);
    this.variances = new Float64Array(maxBuckets + 1);
  }

  push(total: number, variance: number): void {
    this.totals[this.used] = total;
    this.variances[this.used] = variance;
    this.used++;
  }

  /** Drops the `k` oldest summaries. */
  shift(k: number): void {
    this.totals.copyWithin(0, k, this.used);
    this.variances.copyWithin(0, k, this.used);
    this.totals.fill(0, this.used - k, this.used);
    this.variances.fill(0, this.used - k, this.used);
    this.used -= k;
  }
}

function checkOptions(o: AdwinOptions): void {
  const bad = (field: string, what: string): never => {
    throw new SluiceError('INVALID_ARGUMENT', `adwin.${field}: ${what}`);
  };
  if (!(o.delta > 0 && o.delta < 1)) bad('delta', 'must be in (0, 1)');
  if (!Number.isInteger(o.clock) || o.clock < 1) bad('clock', 'must be an integer >= 1');
  if (!Number.isInteger(o.maxBuckets) || o.maxBuckets < 1) bad('max_buckets', 'must be an integer >= 1');
  if (!Number.isInteger(o.minWindowLength) || o.minWindowLength < 1) bad('min_window_length', 'must be an integer >= 1');
  if (!Number.isInteger(o.gracePeriod) || o.gracePeriod < 0) bad('grace_period', 'must be an integer >= 0');
}

export class Adwin {
  readonly options: Readonly<AdwinOptions>;
  private rows: BucketRow[] = [];
  private sum = 0;
  /** Sum of squared deviations from the mean over the window (River's `variance`). */
  private sqDev = 0;
  private n = 0;
  private tick = 0;
  private detected = false;
  private detections = 0;

  constructor(options: Partial<AdwinOptions> = {}) {
    this.options = Object.freeze({ ...ADWIN_DEFAULTS, ...options });
    checkOptions(this.options);
    this.clear();
  }

  /** Values in the window. */
  get width(): number {
    return this.n;
  }

  /** The window's mean (0 when empty). */
  get estimation(): number {
    return this.n === 0 ? 0 : this.sum / this.n;
  }

  get total(): number {
    return this.sum;
  }

  /** River's `variance`: the sum of squared deviations over the window (not divided by the width). */
  get variance(): number {
    return this.sqDev;
  }

  /** Whether the last update reported a change. */
  get driftDetected(): boolean {
    return this.detected;
  }

  /** Changes reported since construction (River counts per reset; this one does not reset). */
  get nDetections(): number {
    return this.detections;
  }

  /** Adds a value; true when it reveals a change. A non-finite value throws (it would poison every sum). */
  update(x: number): boolean {
    if (!Number.isFinite(x)) throw new SluiceError('INVALID_ARGUMENT', `adwin: value ${x} is not finite`);
    if (this.detected) this.clear();
    this.insert(x);
    this.detected = this.detectChange();
    if (this.detected) this.detections++;
    return this.detected;
  }

  private clear(): void {
    this.rows = [new BucketRow(this.options.maxBuckets)];
    this.sum = 0;
    this.sqDev = 0;
    this.n = 0;
    this.tick = 0;
    this.detected = false;
  }

  private insert(x: number): void {
    this.rows[0]!.push(x, 0);
    this.n += 1;
    let inc = 0;
    if (this.n > 1) {
      const d = x - this.sum / (this.n - 1);
      inc = (this.n - 1) * d * d / this.n;
    }
    this.sqDev += inc;
    this.sum += x;
    this.compress();
  }

  /** Merges the two oldest summaries of every full row into the next row up. */
  private compress(): void {
    const max = this.options.maxBuckets;
    for (let i = 0; this.rows[i]!.used === max + 1; i++) {
      const row = this.rows[i]!;
      const size = 2 ** i;
      const t0 = row.totals[0]!;
      const t1 = row.totals[1]!;
      const mu1 = t0 / size;
      const mu2 = t1 / size;
      const merged = row.variances[0]! + row.variances[1]! + size * 0.5 * (mu1 - mu2) * (mu1 - mu2);
      if (i + 1 >= this.rows.length) this.rows.push(new BucketRow(max));
      const next = this.rows[i + 1]!;
      next.push(t0 + t1, merged);
      row.shift(2);
      if (next.used <= max) break;
    }
  }

  /** Drops the oldest summary (in the oldest row). */
  private dropOldest(): void {
    const last = this.rows.length - 1;
    const row = this.rows[last]!;
    const size = 2 ** last;
    const u = row.totals[0]!;
    const v = row.variances[0]!;
    const mu = u / size;
    this.n -= size;
    this.sum -= u;
    const muWindow = this.sum / this.n;
    this.sqDev -= v + size * this.n * (mu - muWindow) * (mu - muWindow) / (size + this.n);
    row.shift(1);
    if (row.used === 0) this.rows.pop();
  }

  /** Every `clock` values: tries each cut (old | new), dropping the oldest summary while one differs. */
  private detectChange(): boolean {
    const { clock, gracePeriod, minWindowLength } = this.options;
    let changed = false;
    this.tick++;
    if (this.tick % clock !== 0 || !(this.n > gracePeriod)) return false;
    let cutFound = true;
    while (cutFound) {
      cutFound = false;
      let n0 = 0;
      let n1 = this.n;
      let u0 = 0;
      let u1 = this.sum;
      scan: for (let i = this.rows.length - 1; i >= 0; i--) {
        const row = this.rows[i]!;
        const size = 2 ** i;
        for (let k = 0; k < row.used; k++) {
          n0 += size;
          n1 -= size;
          const t = row.totals[k]!;
          u0 += t;
          u1 -= t;
          // The newest value never stands alone as W1.
          if (i === 0 && k === row.used - 1) break scan;
          const deltaMean = u0 / n0 - u1 / n1;
          if (n1 >= minWindowLength && n0 >= minWindowLength && this.cutDiffers(n0, n1, deltaMean)) {
            cutFound = true;
            changed = true;
            if (this.n > 0) {
              this.dropOldest();
              break scan;
            }
          }
        }
      }
    }
    return changed;
  }

  /** |mean(W0) - mean(W1)| above the bound epsilon_cut (Bernstein form, as River). */
  private cutDiffers(n0: number, n1: number, deltaMean: number): boolean {
    const { delta, minWindowLength } = this.options;
    const deltaPrime = Math.log(2 * Math.log(this.n) / delta);
    const mRecip = 1 / (n0 - minWindowLength + 1) + 1 / (n1 - minWindowLength + 1);
    const epsilon = Math.sqrt(2 * mRecip * (this.sqDev / this.n) * deltaPrime) + 2 / 3 * deltaPrime * mRecip;
    return Math.abs(deltaMean) > epsilon;
  }
}
