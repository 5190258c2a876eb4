/**
 * The inputs every test in src/analyze takes: per-variant sufficient statistics, never raw rows.
 * The experiment store computes them in SQL (count, avg, var_samp per unit), so analysing a million
 * units costs the same as analysing ten.
 */

/** Per-unit values of one metric in one variant. variance is the sample variance (n - 1). */
export interface Summary {
  n: number;
  mean: number;
  variance: number;
}

/** A rate metric in one variant: n units, of which `successes` converted. */
export interface RateSummary {
  n: number;
  successes: number;
}

export type Interval = [number, number];

/** Summary of raw values (Welford), for tests, simulations and small in-memory callers. */
export function summarize(values: ArrayLike<number>): Summary {
  let mean = 0;
  let m2 = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    const delta = x - mean;
    mean += delta / (i + 1);
    m2 += delta * (x - mean);
  }
  const n = values.length;
  return { n, mean, variance: n > 1 ? m2 / (n - 1) : 0 };
}

/** A rate as the per-unit 0/1 Summary it is (mean p, sample variance n p (1 - p) / (n - 1)). */
export function rateAsSummary(r: RateSummary): Summary {
  if (r.n === 0) return { n: 0, mean: 0, variance: 0 };
  const p = r.successes / r.n;
  return { n: r.n, mean: p, variance: r.n > 1 ? (r.n * p * (1 - p)) / (r.n - 1) : 0 };
}

/** Results go into JSON: anything not finite becomes null rather than NaN or Infinity. */
export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

export function intervalOrNull(lo: number, hi: number): Interval | null {
  return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : null;
}

/** Programmer errors (the store handed over an impossible summary): plain Error, not a SluiceError. */
export function assertSummary(s: Summary, what: string): void {
  if (!(Number.isInteger(s.n) && s.n >= 0) || !Number.isFinite(s.mean) || !(s.variance >= 0) || !Number.isFinite(s.variance)) {
    throw new Error(`${what}: not a summary (n ${s.n}, mean ${s.mean}, variance ${s.variance})`);
  }
}

export function assertRate(r: RateSummary, what: string): void {
  if (!(Number.isInteger(r.n) && r.n >= 0) || !(Number.isInteger(r.successes) && r.successes >= 0 && r.successes <= r.n)) {
    throw new Error(`${what}: not a rate summary (n ${r.n}, successes ${r.successes})`);
  }
}

export function assertAlpha(alpha: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new Error(`alpha must be in (0, 1), got ${alpha}`);
}
