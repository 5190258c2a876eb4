/**
 * The stability monitor: judges each proposed learner update before it is applied. It refuses
 *   - non_finite:      a NaN or infinity in the loss, the gradient norm or the new parameters;
 *   - loss_spike:      a loss above `factor` times the median loss of the last `window` accepted
 *                      updates (in magnitude: absurd labels make a log-loss hugely negative);
 *   - gradient_spike:  the same for the gradient norm;
 *   - loss_drift:      a rise in the loss that ADWIN (src/learn/adwin.ts) detects.
 * Spikes are judged only once `minHistory` updates were accepted (again after a detected change).
 * A refused update enters no median. The caller turns a refusal into a metric, a log line and
 * the last good state.
 *
 * ADWIN watches the loss of every update that is finite and not a loss spike: that loss is measured
 * on the committed parameters, so it describes the stream, whatever happens to the update. When
 * ADWIN cuts its window the regime has changed, so the medians are forgotten and rebuilt from the
 * updates that follow; otherwise a lasting change (a bigger typical gradient after the concept
 * moved) would be refused forever. A fall in the loss is a change too, but a welcome one: the
 * update is accepted.
 */
import { SluiceError } from '../errors.js';
import { Adwin, ADWIN_DEFAULTS, type AdwinOptions } from './adwin.js';

export interface UpdateSummary {
  loss: number;
  gradNorm: number;
  params: Float64Array;
}

export type RejectReason = 'non_finite' | 'loss_spike' | 'gradient_spike' | 'loss_drift';

export type StabilityVerdict = { ok: true } | { ok: false; reason: RejectReason; detail: string };

export interface StabilityOptions {
  /** A loss or gradient norm above factor x its running median is a spike. */
  factor: number;
  /** Accepted updates the running medians span. */
  window: number;
  /** Accepted updates needed before spikes are judged. */
  minHistory: number;
  /** ADWIN on the loss; false turns drift detection off. */
  adwin: Readonly<AdwinOptions> | false;
}

export const STABILITY_DEFAULTS: Readonly<StabilityOptions> = Object.freeze({ factor: 10, window: 100, minHistory: 10, adwin: ADWIN_DEFAULTS });

/** The median of the last `capacity` values: a ring of arrival order beside a sorted copy. */
export class RunningMedian {
  private readonly ring: Float64Array;
  private readonly sorted: number[] = [];
  private next = 0;

  constructor(readonly capacity: number) {
    this.ring = new Float64Array(capacity);
  }

  get size(): number {
    return this.sorted.length;
  }

  push(v: number): void {
    if (this.sorted.length === this.capacity) this.sorted.splice(this.lowerBound(this.ring[this.next]!), 1);
    this.ring[this.next] = v;
    this.next = (this.next + 1) % this.capacity;
    this.sorted.splice(this.lowerBound(v), 0, v);
  }

  /** NaN when empty. */
  median(): number {
    const n = this.sorted.length;
    if (n === 0) return Number.NaN;
    const mid = n >> 1;
    return n % 2 === 1 ? this.sorted[mid]! : (this.sorted[mid - 1]! + this.sorted[mid]!) / 2;
  }

  clear(): void {
    this.sorted.length = 0;
    this.next = 0;
  }

  private lowerBound(v: number): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (this.sorted[m]! < v) lo = m + 1;
      else hi = m;
    }
    return lo;
  }
}

export class StabilityMonitor {
  readonly options: Readonly<StabilityOptions>;
  private readonly losses: RunningMedian;
  private readonly gradNorms: RunningMedian;
  private readonly adwin: Adwin | null;

  constructor(options: Partial<StabilityOptions> = {}) {
    this.options = Object.freeze({ ...STABILITY_DEFAULTS, ...options });
    const { factor, window, minHistory } = this.options;
    if (!(factor > 1 && Number.isFinite(factor))) throw new SluiceError('INVALID_ARGUMENT', 'stability: factor must be a finite number > 1');
    if (!Number.isInteger(window) || window < 1) throw new SluiceError('INVALID_ARGUMENT', 'stability: window must be an integer >= 1');
    if (!Number.isInteger(minHistory) || minHistory < 1 || minHistory > window) throw new SluiceError('INVALID_ARGUMENT', 'stability: min_history must be an integer in [1, window]');
    this.losses = new RunningMedian(window);
    this.gradNorms = new RunningMedian(window);
    this.adwin = this.options.adwin === false ? null : new Adwin(this.options.adwin);
  }

  /** Accepted updates the medians hold now. */
  get history(): number {
    return this.losses.size;
  }

  /** Judges a proposed update; an accepted one enters the running medians. */
  judge(u: UpdateSummary): StabilityVerdict {
    if (!Number.isFinite(u.loss) || !Number.isFinite(u.gradNorm)) {
      return { ok: false, reason: 'non_finite', detail: `loss ${u.loss}, gradient norm ${u.gradNorm}` };
    }
    const bad = u.params.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return { ok: false, reason: 'non_finite', detail: `parameter ${bad} would be ${u.params[bad]}` };
    const lossSpike = this.spike(u.loss, this.losses, 'loss');
    if (lossSpike) return { ok: false, reason: 'loss_spike', detail: lossSpike };
    // Judged against the medians as they stand before ADWIN may clear them: an update cannot
    // escape the check by coinciding with a detected change.
    const gradSpike = this.spike(u.gradNorm, this.gradNorms, 'gradient norm');
    if (this.adwin) {
      const before = this.adwin.estimation;
      if (this.adwin.update(u.loss)) {
        this.losses.clear();
        this.gradNorms.clear();
        const after = this.adwin.estimation;
        if (after > before) return { ok: false, reason: 'loss_drift', detail: `ADWIN: mean loss rose from ${before.toPrecision(4)} to ${after.toPrecision(4)} over the last ${this.adwin.width} updates` };
      }
    }
    if (gradSpike) return { ok: false, reason: 'gradient_spike', detail: gradSpike };
    this.losses.push(u.loss);
    this.gradNorms.push(u.gradNorm);
    return { ok: true };
  }

  /**
   * Why `v` is a spike against `history`, or null (also while the history is too short to
   * judge). Magnitudes: a log-loss is never negative unless the labels are absurd, and then a
   * hugely negative loss is as much a spike as a huge one.
   */
  private spike(v: number, history: RunningMedian, what: string): string | null {
    if (history.size < this.options.minHistory) return null;
    const median = history.median();
    if (!(Math.abs(v) > this.options.factor * Math.abs(median))) return null;
    return `${what} ${v.toPrecision(4)} > ${this.options.factor} x median ${median.toPrecision(4)} of the last ${history.size} accepted updates`;
  }
}

function bad(where: string, what: string): SluiceError {
  return new SluiceError('MANIFEST_INVALID', `${where}: ${what}`);
}

function intIn(o: Record<string, unknown>, key: string, where: string, dflt: number, min: number, max: number): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`${where}.${key}`, `must be an integer in [${min}, ${max}]`);
  return v;
}

function onlyKeys(o: Record<string, unknown>, keys: string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${where}.${k}`, `unknown field (expected one of ${keys.join(', ')})`);
}

function parseAdwin(raw: unknown, where: string): Readonly<AdwinOptions> | false {
  if (raw === false) return false;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(where, 'must be an object or false');
  const o = raw as Record<string, unknown>;
  onlyKeys(o, ['delta', 'clock', 'max_buckets', 'min_window_length', 'grace_period'], where);
  const delta = o.delta ?? ADWIN_DEFAULTS.delta;
  if (typeof delta !== 'number' || !(delta > 0 && delta < 1)) throw bad(`${where}.delta`, 'must be a number in (0, 1)');
  return Object.freeze({
    delta,
    clock: intIn(o, 'clock', where, ADWIN_DEFAULTS.clock, 1, 1_000_000),
    maxBuckets: intIn(o, 'max_buckets', where, ADWIN_DEFAULTS.maxBuckets, 1, 1_000),
    minWindowLength: intIn(o, 'min_window_length', where, ADWIN_DEFAULTS.minWindowLength, 1, 1_000_000),
    gracePeriod: intIn(o, 'grace_period', where, ADWIN_DEFAULTS.gracePeriod, 0, 1_000_000),
  });
}

/**
 * Reads the monitor's settings (snake_case): `{factor, window, min_history, adwin}`, `adwin`
 * being `{delta, clock, max_buckets, min_window_length, grace_period}` or false; all optional.
 * Throws MANIFEST_INVALID naming the field.
 */
export function parseStabilityOptions(raw: unknown, where = 'parameters.stability'): StabilityOptions {
  if (raw === undefined) return { ...STABILITY_DEFAULTS };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(where, 'must be an object');
  const o = raw as Record<string, unknown>;
  onlyKeys(o, ['factor', 'window', 'min_history', 'adwin'], where);
  const factor = o.factor ?? STABILITY_DEFAULTS.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor <= 1) throw bad(`${where}.factor`, 'must be a finite number > 1');
  const window = intIn(o, 'window', where, STABILITY_DEFAULTS.window, 1, 100_000);
  const minHistory = intIn(o, 'min_history', where, Math.min(STABILITY_DEFAULTS.minHistory, window), 1, window);
  const adwin = o.adwin === undefined ? STABILITY_DEFAULTS.adwin : parseAdwin(o.adwin, `${where}.adwin`);
  return { factor, window, minHistory, adwin };
}
