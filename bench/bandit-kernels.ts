/**
 * Native bandit kernels on the request path and in the learner (native/src/bandit/linear.rs,
 * thompson.rs): a LinUCB decision for d = 32, K = 10 and d = 100, K = 5 (arm stats from the FP32
 * context, then the argmax of mean + alpha * width in JS) against the same-run baseline of the
 * older f64 linucbScores (scalar, after copying the context to f64); linucbLearn events per
 * second; Thompson selection over Normal and Beta posteriors with and without pick probabilities.
 * Checks the stats against the scalar reference and linucbScores first.
 */
import {
  createRng, linearArmStats, linearArmStatsScalar, linearServingForm, linearServingFormLength, linearServingStats, linucbLearn,
  linucbScores, shermanMorrisonUpdate, simdLevel,
} from '../src/native.js';
import { check, compare, table, timeNs } from './util.js';

/** Deterministic uniform values in [-1, 1) (an LCG: enough for benchmark data). */
function rand(n: number, seed: number): Float64Array {
  const a = new Float64Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
}

interface LinState {
  aInv: Float64Array;
  a: Float64Array;
  b: Float64Array;
}

/** A LinUCB state of K arms (A = I) that has learned `n` random events, as a served model has. */
function learnedState(K: number, d: number, n: number, seed: number): LinState {
  const s: LinState = { aInv: new Float64Array(K * d * d), a: new Float64Array(K * d * d), b: new Float64Array(K * d) };
  for (let k = 0; k < K; k++) {
    for (let i = 0; i < d; i++) {
      s.aInv[k * d * d + i * d + i] = 1;
      s.a[k * d * d + i * d + i] = 1;
    }
  }
  const ev = events(K, d, n, seed);
  check(linucbLearn(s.aInv, s.a, s.b, ev.arms, ev.x, ev.rewards) === n, `d=${d} K=${K}: every warm-up event applies`);
  return s;
}

function events(K: number, d: number, n: number, seed: number): { arms: Uint32Array; x: Float32Array; rewards: Float64Array } {
  const r = rand(n, seed + 2);
  return {
    arms: Uint32Array.from(rand(n, seed), (v) => Math.floor((v + 1) / 2 * K) % K),
    x: Float32Array.from(rand(n * d, seed + 1)),
    rewards: Float64Array.from(r, (v) => (v > 0 ? 1 : 0)),
  };
}

function argmax(scores: ArrayLike<number>): number {
  let best = 0;
  for (let k = 1; k < scores.length; k++) if (scores[k]! > scores[best]!) best = k;
  return best;
}

function relClose(a: number, b: number, rel: number): boolean {
  return Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));
}

const ALPHA = 1.5;

function linucbRows(rows: Array<Array<string | number>>, formRows: Array<Array<string | number>>): void {
  let sink = 0;
  for (const [d, K] of [[32, 10], [100, 5]] as const) {
    const s = learnedState(K, d, 20 * d * K, d * K);
    const x = Float32Array.from(rand(d, 99 + d));
    const means = new Float64Array(K);
    const widths = new Float64Array(K);
    const refMeans = new Float64Array(K);
    const refWidths = new Float64Array(K);
    linearArmStats(s.aInv, s.b, x, 1, means, widths);
    linearArmStatsScalar(s.aInv, s.b, x, 1, refMeans, refWidths);
    const xd = Float64Array.from(x);
    const scores0 = new Float64Array(K);
    const scores = new Float64Array(K);
    linucbScores(s.aInv, s.b, xd, 0, scores0);
    linucbScores(s.aInv, s.b, xd, ALPHA, scores);
    const ours = Array.from(means, (m, k) => m + ALPHA * widths[k]!);
    for (let k = 0; k < K; k++) {
      check(relClose(means[k]!, refMeans[k]!, 1e-9) && relClose(widths[k]!, refWidths[k]!, 1e-9), `d=${d} arm ${k}: stats equal the scalar reference`);
      check(relClose(means[k]!, scores0[k]!, 1e-9) && relClose(ours[k]!, scores[k]!, 1e-9), `d=${d} arm ${k}: stats equal linucbScores`);
    }
    check(argmax(ours) === argmax(scores), `d=${d}: same arm selected`);
    // The decision as the runtime makes it: stats from the FP32 context, score and argmax in JS.
    const select = (): void => {
      linearArmStats(s.aInv, s.b, x, 1, means, widths);
      let best = 0;
      let bestScore = -Infinity;
      for (let k = 0; k < K; k++) {
        const v = means[k]! + ALPHA * widths[k]!;
        if (v > bestScore) {
          bestScore = v;
          best = k;
        }
      }
      sink += best;
    };
    const baseline = (): void => {
      xd.set(x);
      linucbScores(s.aInv, s.b, xd, ALPHA, scores);
      sink += argmax(scores);
    };
    const score = compare(() => linearArmStats(s.aInv, s.b, x, 1, means, widths), () => { xd.set(x); linucbScores(s.aInv, s.b, xd, ALPHA, scores); });
    rows.push([`LinUCB score d=${d} K=${K}`, score.a, score.b, `${score.ratio.toFixed(2)}x`]);
    const sel = compare(select, baseline);
    rows.push([`LinUCB select d=${d} K=${K}`, sel.a, sel.b, `${sel.ratio.toFixed(2)}x`]);
    formRows.push(...servingFormRows(s, x, K, d));
  }
  if (sink === 42) console.log('');
}

/** The serving form (A^-1's upper triangle in f32, built once per published state) against linearArmStats on the same state, same run. */
function servingFormRows(s: LinState, x: Float32Array, K: number, d: number): Array<Array<string | number>> {
  const form = new Float64Array(linearServingFormLength(K, d));
  linearServingForm(s.aInv, s.b, form);
  const [m0, w0, m1, w1] = [0, 0, 0, 0].map(() => new Float64Array(K));
  linearArmStats(s.aInv, s.b, x, 1, m0!, w0!);
  linearServingStats(form, x, 1, m1!, w1!);
  // Means in f64 as linearArmStats; widths from the form's f32 triangle (native/src/bandit/serving_form.rs).
  for (let k = 0; k < K; k++) check(relClose(m1![k]!, m0![k]!, 1e-9) && relClose(w1![k]!, w0![k]!, 1e-5), `d=${d} arm ${k}: the serving form's stats equal linearArmStats (widths to f32 rounding)`);
  const r = compare(() => linearServingStats(form, x, 1, m1!, w1!), () => linearArmStats(s.aInv, s.b, x, 1, m0!, w0!));
  return [[`d=${d} K=${K}`, r.a, r.b, `${r.ratio.toFixed(2)}x`]];
}

function learnRows(rows: Array<Array<string | number>>): void {
  const batch = 256;
  for (const [d, K] of [[32, 10], [100, 5]] as const) {
    const s = learnedState(K, d, 1000, 7 * d);
    const ev = events(K, d, batch, 11 * d);
    let applied = 0;
    const native = (): void => { applied += linucbLearn(s.aInv, s.a, s.b, ev.arms, ev.x, ev.rewards); };
    // Baseline: the older one-event f64 update called per event (it keeps A^-1 and b, not A).
    const base = learnedState(K, d, 1000, 7 * d);
    const views = Array.from({ length: K }, (_, k) => [base.aInv.subarray(k * d * d, (k + 1) * d * d), base.b.subarray(k * d, (k + 1) * d)] as const);
    const xs = Array.from({ length: batch }, (_, i) => Float64Array.from(ev.x.subarray(i * d, (i + 1) * d)));
    const perEvent = (): void => {
      for (let i = 0; i < batch; i++) {
        const [ai, bk] = views[ev.arms[i]!]!;
        shermanMorrisonUpdate(ai, bk, xs[i]!, ev.rewards[i]!);
      }
    };
    native();
    check(applied === batch, `d=${d}: linucbLearn applies every event`);
    const r = compare(native, perEvent);
    rows.push([`d=${d} K=${K}`, batch, (batch / r.a) * 1e9, (batch / r.b) * 1e9, `${r.ratio.toFixed(2)}x`]);
  }
}

function thompsonRows(rows: Array<Array<string | number>>): void {
  const K = 10;
  const rng = createRng(1);
  const means = Float64Array.from(rand(K, 5), (v) => 0.5 + 0.1 * v);
  const sds = Float64Array.from(rand(K, 6), (v) => 0.05 + 0.02 * (v + 1));
  const alphas = Float64Array.from(rand(K, 7), (v) => 20 + 10 * v);
  const betas = Float64Array.from(rand(K, 8), (v) => 30 + 10 * v);
  const probs = new Float64Array(K);
  let sink = 0;
  for (const draws of [0, 200]) {
    const n = timeNs(() => { sink += rng.thompsonNormal(means, sds, draws, probs); });
    const b = timeNs(() => { sink += rng.thompsonBeta(alphas, betas, draws, probs); });
    if (draws > 0) check(Math.abs(probs.reduce((s, v) => s + v, 0) - 1) < 1e-9, 'probabilities sum to 1');
    rows.push([`K=${K} draws=${draws}`, n, b]);
  }
  const select = timeNs(() => { sink += rng.thompsonSelect(alphas, betas); });
  rows.push([`K=${K} thompsonSelect (Beta, existing)`, '', select]);
  if (sink === 42) console.log('');
}

export async function runBanditKernels(): Promise<void> {
  const linucb: Array<Array<string | number>> = [];
  const formRows: Array<Array<string | number>> = [];
  linucbRows(linucb, formRows);
  table(`LinUCB per decision (${simdLevel}), ns per call: linearArmStats from the FP32 context vs the f64 linucbScores after an f32 -> f64 copy (median of 7 interleaved rounds; target < 5 us for d=32 K=10)`,
    ['decision', 'native ns', 'f64 scalar ns', 'speedup'], linucb);
  table(`LinUCB stats per decision (${simdLevel}), ns per call: linearServingStats from the serving form (A^-1 b and A^-1's diagonal in f64, its upper triangle in f32) vs linearArmStats from the state (median of 7 interleaved rounds)`,
    ['decision', 'serving form ns', 'linearArmStats ns', 'speedup'], formRows);
  const learn: Array<Array<string | number>> = [];
  learnRows(learn);
  table('linucbLearn events per second (in-process, one batch per call; target >= 100,000/s) vs shermanMorrisonUpdate called per event',
    ['state', 'batch', 'linucbLearn ev/s', 'per-event ev/s', 'speedup'], learn);
  const thompson: Array<Array<string | number>> = [];
  thompsonRows(thompson);
  table('Thompson selection, ns per call (draws > 0: also the pick probabilities from that many rounds)', ['arms', 'thompsonNormal ns', 'thompsonBeta ns'], thompson);
}
