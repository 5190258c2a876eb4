/**
 * The Mann-Whitney U test on binned samples: each sample is a list of (value, count) pairs, as an
 * HDR latency histogram gives them, so two versions' latencies over a window are compared without
 * keeping every request's latency. Values equal across the samples are ties and get mid-ranks.
 *
 * Matches scipy.stats.mannwhitneyu(x, y, method='asymptotic', use_continuity=True) on the
 * expanded samples (test/analyze/mann-whitney.test.ts against test/fixtures/stats): U of the first
 * sample, z with the tie-corrected variance and the continuity correction, the p-value of the
 * chosen alternative ('greater': the first sample tends to be larger). Kayenta's canary judge
 * compares latencies the same way (a rank test, insensitive to the long tail's scale).
 */
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';

export type Bins = ReadonlyArray<readonly [value: number, count: number]>;

export interface MannWhitneyResult {
  /** U of the first sample (the number of pairs (x, y) with x > y, ties counting one half). */
  u: number;
  nx: number;
  ny: number;
  z: number | null;
  p: number | null;
  /** P(X > Y) + P(X = Y) / 2, the common-language effect size: 0.5 means no shift. */
  effect: number | null;
}

function total(b: Bins): number {
  let n = 0;
  for (const [, c] of b) {
    if (!(Number.isInteger(c) && c >= 0)) throw new Error(`mann-whitney: count ${c} is not a count`);
    n += c;
  }
  return n;
}

/** The test of `x` against `y`; alternative 'greater' asks whether x tends to be larger. */
export function mannWhitney(x: Bins, y: Bins, alternative: 'two-sided' | 'greater' | 'less' = 'two-sided'): MannWhitneyResult {
  const nx = total(x);
  const ny = total(y);
  if (nx === 0 || ny === 0) return { u: 0, nx, ny, z: null, p: null, effect: null };
  // Merge the two binned samples by value: every distinct value is one tie group.
  const groups = new Map<number, [number, number]>();
  for (const [v, c] of x) if (c > 0) (groups.get(v) ?? groups.set(v, [0, 0]).get(v)!)[0] += c;
  for (const [v, c] of y) if (c > 0) (groups.get(v) ?? groups.set(v, [0, 0]).get(v)!)[1] += c;
  const values = [...groups.keys()].sort((a, b) => a - b);
  let below = 0;
  let rankSumX = 0;
  let tieTerm = 0;
  for (const v of values) {
    const [cx, cy] = groups.get(v)!;
    const t = cx + cy;
    // Ranks below + 1 .. below + t share the mid-rank.
    rankSumX += cx * (below + (t + 1) / 2);
    tieTerm += t * t * t - t;
    below += t;
  }
  const u = rankSumX - (nx * (nx + 1)) / 2;
  const n = nx + ny;
  const mu = (nx * ny) / 2;
  const variance = ((nx * ny) / 12) * (n + 1 - tieTerm / (n * (n - 1)));
  const effect = u / (nx * ny);
  if (!(variance > 0)) return { u, nx, ny, z: null, p: null, effect };
  const sd = Math.sqrt(variance);
  // scipy: the continuity correction moves U half a unit towards the mean, per alternative.
  let z: number;
  let p: number;
  if (alternative === 'greater') {
    z = (u - mu - 0.5) / sd;
    p = 1 - normalCdf(z, 0, 1);
  } else if (alternative === 'less') {
    z = (u - mu + 0.5) / sd;
    p = normalCdf(z, 0, 1);
  } else {
    const big = Math.max(u, nx * ny - u);
    z = (big - mu - 0.5) / sd;
    p = Math.min(1, 2 * (1 - normalCdf(z, 0, 1)));
  }
  return { u, nx, ny, z, p, effect };
}
