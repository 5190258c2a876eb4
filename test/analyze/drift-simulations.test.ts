/**
 * Seeded simulations of the change detectors (the acceptance): streams of N(0, 1) values
 * whose mean rises by SHIFT at CHANGE_AT, and stationary streams of N(0, 1) values.
 * - Page-Hinkley and ADWIN detect the change within the delay their parameters predict;
 * - on stationary streams they raise an alarm about as often as predicted.
 * The rates and delays are printed for the README.
 */
import { describe, expect, it } from 'vitest';
import { PageHinkley, type PageHinkleyOptions } from '../../src/analyze/page-hinkley.js';
import { Adwin, ADWIN_DEFAULTS } from '../../src/learn/adwin.js';
import { mulberry32 } from '../../src/random.js';

const CHANGE_AT = 1000;
const SHIFT = 1;
const CHANGE_RUNS = 300;
const STATIONARY_RUNS = 500;
const STATIONARY_LENGTH = 1000;

/** Box-Muller on mulberry32: standard normal draws, reproducible from the seed. */
function normals(seed: number): () => number {
  const u = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

interface Detector { update(x: number): boolean }

/** The first detection at or after the change, as values after it (null: none in `after` values). */
function delayAfterChange(detector: Detector, seed: number, after: number): { delay: number | null; early: boolean } {
  const draw = normals(seed);
  let early = false;
  for (let i = 0; i < CHANGE_AT + after; i++) {
    const fired = detector.update(draw() + (i >= CHANGE_AT ? SHIFT : 0));
    if (fired && i < CHANGE_AT) early = true;
    if (fired && i >= CHANGE_AT) return { delay: i - CHANGE_AT + 1, early };
  }
  return { delay: null, early };
}

function alarmsWithin(detector: Detector, seed: number, length: number): boolean {
  const draw = normals(seed);
  for (let i = 0; i < length; i++) if (detector.update(draw())) return true;
  return false;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Page-Hinkley is a CUSUM of x - mean - delta; Siegmund's approximation of a CUSUM's average run
 * length with drift mu per value (in units of sigma = 1) and threshold h, corrected to h + 1.166
 * for the overshoot: ARL(mu) = (exp(-2 mu h') + 2 mu h' - 1) / (2 mu^2).
 */
function siegmundArl(mu: number, h: number): number {
  const hp = h + 1.166;
  return (Math.exp(-2 * mu * hp) + 2 * mu * hp - 1) / (2 * mu * mu);
}

describe('change detectors on seeded streams', () => {
  // No forgetting (alpha = 1), so the CUSUM theory applies as written.
  const ph: Partial<PageHinkleyOptions> = { minInstances: 30, delta: 0.1, threshold: 25, alpha: 1, mode: 'both' };

  it('Page-Hinkley detects a mean shift about threshold / (shift - delta) values after it', () => {
    const rise = SHIFT - ph.delta!;
    const rough = ph.threshold! / rise;
    // From a zero start (the statistic at its minimum when the change comes): Siegmund's ARL.
    const fromZero = siegmundArl(rise, ph.threshold!);
    // But a stationary CUSUM with drift -delta sits about sigma^2 / (2 delta) above its minimum
    // (its stationary law is close to exponential with that mean): a head start of that much.
    const withHeadStart = (ph.threshold! + 1.166 - 1 / (2 * ph.delta!)) / rise;
    const delays: number[] = [];
    let missed = 0;
    for (let r = 0; r < CHANGE_RUNS; r++) {
      const { delay } = delayAfterChange(new PageHinkley(ph), 10_000 + r, 10 * rough);
      if (delay === null) missed++;
      else delays.push(delay);
    }
    delays.sort((a, b) => a - b);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    console.log(`Page-Hinkley (delta ${ph.delta}, threshold ${ph.threshold}), shift ${SHIFT} sd at ${CHANGE_AT}, ${CHANGE_RUNS} streams: mean delay ${mean.toFixed(1)} values (threshold / (shift - delta) = ${rough.toFixed(1)}; predicted ${withHeadStart.toFixed(1)} - ${fromZero.toFixed(1)}), median ${quantile(delays, 0.5)}, 95th percentile ${quantile(delays, 0.95)}, missed ${missed}`);
    expect(missed).toBe(0);
    expect(mean).toBeGreaterThan(0.9 * withHeadStart);
    expect(mean).toBeLessThan(1.1 * fromZero);
    expect(quantile(delays, 0.95)).toBeLessThan(1.5 * rough);
  });

  it('Page-Hinkley stays quiet on stationary streams at about the predicted false-alarm rate', () => {
    // Two one-sided CUSUMs with drift -delta each; alarms arrive about geometrically. The streams
    // start with the statistics at zero, below their stationary level, so the first alarm comes a
    // little later than the ARL says: the measured rate runs somewhat under the prediction.
    const arl = 1 / (2 / siegmundArl(-ph.delta!, ph.threshold!));
    const predicted = 1 - Math.exp(-STATIONARY_LENGTH / arl);
    let alarms = 0;
    for (let r = 0; r < STATIONARY_RUNS; r++) if (alarmsWithin(new PageHinkley(ph), 20_000 + r, STATIONARY_LENGTH)) alarms++;
    const rate = alarms / STATIONARY_RUNS;
    console.log(`Page-Hinkley stationary: an alarm within ${STATIONARY_LENGTH} values in ${alarms}/${STATIONARY_RUNS} streams (${rate.toFixed(3)}; predicted ${predicted.toFixed(3)}, two-sided ARL ${arl.toFixed(0)})`);
    expect(rate).toBeGreaterThan(0.5 * predicted);
    expect(rate).toBeLessThan(1.5 * predicted);
  });

  it('ADWIN detects a mean shift within the delay its bound predicts', () => {
    const { delta, clock, minWindowLength } = ADWIN_DEFAULTS;
    const boundMet = adwinDelay(CHANGE_AT, SHIFT, delta, minWindowLength);
    // Checks run when the count of values is a multiple of `clock`: the first one after the bound
    // is met is the predicted detection (one check earlier or later with the new values' noise).
    const predicted = Math.ceil((CHANGE_AT + boundMet) / clock) * clock - CHANGE_AT;
    const delays: number[] = [];
    let missed = 0;
    for (let r = 0; r < CHANGE_RUNS; r++) {
      const { delay } = delayAfterChange(new Adwin(), 30_000 + r, 10 * (boundMet + clock));
      if (delay === null) missed++;
      else delays.push(delay);
    }
    delays.sort((a, b) => a - b);
    const atPredicted = delays.filter((d) => d === predicted).length;
    console.log(`ADWIN (delta ${delta}, clock ${clock}), shift ${SHIFT} sd at ${CHANGE_AT}, ${CHANGE_RUNS} streams: median delay ${quantile(delays, 0.5)} values, 95th percentile ${quantile(delays, 0.95)}, max ${delays[delays.length - 1]} (bound met ${boundMet} values after the change, so predicted at the check ${predicted} values after it; ${atPredicted} streams exactly there), missed ${missed}`);
    expect(missed).toBe(0);
    expect(quantile(delays, 0.5)).toBe(predicted);
    expect(quantile(delays, 0.05)).toBeGreaterThanOrEqual(predicted - clock);
    expect(quantile(delays, 0.95)).toBeLessThanOrEqual(predicted + clock);
  });

  it('ADWIN stays quiet on stationary streams', () => {
    const { delta, clock } = ADWIN_DEFAULTS;
    let alarms = 0;
    for (let r = 0; r < STATIONARY_RUNS; r++) if (alarmsWithin(new Adwin(), 40_000 + r, STATIONARY_LENGTH)) alarms++;
    // Each check is a false alarm with probability at most delta (the bound's union over cuts
    // makes that conservative); a stream has STATIONARY_LENGTH / clock checks.
    const bound = 1 - (1 - delta) ** (STATIONARY_LENGTH / clock);
    const rate = alarms / STATIONARY_RUNS;
    console.log(`ADWIN stationary: an alarm within ${STATIONARY_LENGTH} values in ${alarms}/${STATIONARY_RUNS} streams (${rate.toFixed(3)}; bound ${bound.toFixed(3)})`);
    expect(alarms).toBeLessThanOrEqual(STATIONARY_RUNS * bound);
  });
});

/**
 * Values after the change at which ADWIN's cut between the old (n0 = changeAt) and new (n1)
 * values meets its bound when the means differ by exactly `shift`:
 * eps = sqrt(2 m v d') + 2/3 d' m,  m = 1/(n0 - w + 1) + 1/(n1 - w + 1),  d' = ln(2 ln n / delta),
 * v the window's variance (1 plus the mixture's spread, n1 n0 shift^2 / n^2).
 */
function adwinDelay(changeAt: number, shift: number, delta: number, minWindow: number): number {
  for (let n1 = minWindow; ; n1++) {
    const n = changeAt + n1;
    const v = 1 + n1 * changeAt * shift * shift / (n * n);
    const dPrime = Math.log(2 * Math.log(n) / delta);
    const m = 1 / (changeAt - minWindow + 1) + 1 / (n1 - minWindow + 1);
    const eps = Math.sqrt(2 * m * v * dPrime) + 2 / 3 * dPrime * m;
    if (shift > eps) return n1;
  }
}
