/**
 * Page-Hinkley change detector (Page 1954; a CUSUM on deviations from the running mean) over a
 * stream of numbers: predictions, rewards or errors.
 *
 *   mean_t  = running mean of x_1..x_t (since the last detection)
 *   up_t    = alpha up_{t-1}   + (x_t - mean_t) - delta     test: up_t - min(up)     > threshold
 *   down_t  = alpha down_{t-1} + (x_t - mean_t) + delta     test: max(down) - down_t > threshold
 *
 * `delta` is the size of change tolerated (a rise smaller than delta per value never accumulates),
 * `threshold` (lambda) the evidence needed: after a rise of the mean by s > delta, detection comes
 * about threshold / (s - delta) values later. `alpha` < 1 lets old deviations fade.
 *
 * This follows River's river.drift.PageHinkley (0.26) step for step, including its quirks: the
 * running max of `down` starts at -1 (not -inf), the running mean includes the current value, and
 * the state resets on the update after a detection. test/analyze/page-hinkley.test.ts replays
 * River's runs (scripts/stats/page_hinkley_reference.py).
 */
import { SluiceError } from '../errors.js';

export type PageHinkleyMode = 'up' | 'down' | 'both';

export interface PageHinkleyOptions {
  /** Values needed (since the last detection) before a change can be reported. */
  minInstances: number;
  /** Change magnitude tolerated. */
  delta: number;
  /** Detection threshold (lambda). */
  threshold: number;
  /** Forgetting factor of the cumulated deviations (1 = none). */
  alpha: number;
  /** Watch rises, falls or both. */
  mode: PageHinkleyMode;
}

/** River's defaults. */
export const PAGE_HINKLEY_DEFAULTS: Readonly<PageHinkleyOptions> = Object.freeze({
  minInstances: 30, delta: 0.005, threshold: 50, alpha: 1 - 0.0001, mode: 'both',
});

function checkOptions(o: PageHinkleyOptions): void {
  const bad = (field: string, what: string): never => {
    throw new SluiceError('INVALID_ARGUMENT', `page_hinkley.${field}: ${what}`);
  };
  if (!Number.isInteger(o.minInstances) || o.minInstances < 1) bad('min_instances', 'must be an integer >= 1');
  if (!(Number.isFinite(o.delta) && o.delta >= 0)) bad('delta', 'must be a finite number >= 0');
  if (!(Number.isFinite(o.threshold) && o.threshold > 0)) bad('threshold', 'must be a finite number > 0');
  if (!(o.alpha > 0 && o.alpha <= 1)) bad('alpha', 'must be in (0, 1]');
  if (o.mode !== 'up' && o.mode !== 'down' && o.mode !== 'both') bad('mode', 'must be up, down or both');
}

export class PageHinkley {
  readonly options: Readonly<PageHinkleyOptions>;
  private n = 0;
  private mean = 0;
  private sumIncrease = 0;
  private sumDecrease = 0;
  private minIncrease = Infinity;
  private maxDecrease = -1;
  private detected = false;
  private detections = 0;

  constructor(options: Partial<PageHinkleyOptions> = {}) {
    this.options = Object.freeze({ ...PAGE_HINKLEY_DEFAULTS, ...options });
    checkOptions(this.options);
  }

  /** Values since the last reset. */
  get count(): number {
    return this.n;
  }

  /** Running mean since the last reset. */
  get estimation(): number {
    return this.mean;
  }

  /** up_t - min(up): the evidence for a rise. */
  get increaseStatistic(): number {
    return this.sumIncrease - this.minIncrease;
  }

  /** max(down) - down_t: the evidence for a fall. */
  get decreaseStatistic(): number {
    return this.maxDecrease - this.sumDecrease;
  }

  /** Whether the last update reported a change. */
  get driftDetected(): boolean {
    return this.detected;
  }

  /** Changes reported since construction. */
  get nDetections(): number {
    return this.detections;
  }

  /** Adds a value; true when it reveals a change. A non-finite value throws (it would poison the sums). */
  update(x: number): boolean {
    if (!Number.isFinite(x)) throw new SluiceError('INVALID_ARGUMENT', `page_hinkley: value ${x} is not finite`);
    if (this.detected) this.reset();
    const { alpha, delta, minInstances, threshold, mode } = this.options;
    this.n += 1;
    this.mean += (1 / this.n) * (x - this.mean);
    const dev = x - this.mean;
    this.sumIncrease = alpha * this.sumIncrease + dev - delta;
    this.sumDecrease = alpha * this.sumDecrease + dev + delta;
    if (this.sumIncrease < this.minIncrease) this.minIncrease = this.sumIncrease;
    if (this.sumDecrease > this.maxDecrease) this.maxDecrease = this.sumDecrease;
    if (this.n >= minInstances) {
      const up = this.increaseStatistic > threshold;
      const down = this.decreaseStatistic > threshold;
      this.detected = mode === 'up' ? up : mode === 'down' ? down : up || down;
      if (this.detected) this.detections++;
    }
    return this.detected;
  }

  private reset(): void {
    this.n = 0;
    this.mean = 0;
    this.sumIncrease = 0;
    this.sumDecrease = 0;
    this.minIncrease = Infinity;
    this.maxDecrease = -1;
    this.detected = false;
  }
}
