/**
 * The online logistic learner: its gradient step, FP32 export, checkpoints and proposals; and the
 * acceptance test of issue #13: on a seeded stream whose true weights change halfway, each
 * schedule tracks the change (log-loss on the last 10% within 10% of an oracle fitted on that
 * segment), with the stability monitor judging every update, and a poisonous batch is refused
 * with the committed weights unchanged.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OnlineLogistic, parseSgdOptions, type OnlineLogisticOptions } from '../../src/learn/online-logistic.js';
import { parseSchedule, type Schedule } from '../../src/learn/schedules.js';
import { StabilityMonitor } from '../../src/learn/stability.js';
import { projectRoot } from '../../src/paths.js';
import { mulberry32 } from '../helpers/random.js';
import { fitLogistic, meanLogLoss } from './logistic-oracle.js';

const D = 10;
const N = 20_000;
const BATCH = 32;
const CHANGE_AT = N / 2;
const TAIL_FROM = N - N / 10;

/** 20,000 examples, x uniform in [-1, 1]^10; the true weights (and bias) change at example 10,000. */
function driftingStream(seed: number): { x: Float32Array; y: Float64Array; before: Float64Array; after: Float64Array } {
  const r = mulberry32(seed);
  const draw = (): Float64Array => Float64Array.from({ length: D + 1 }, () => (r() * 2 - 1) * 1.5);
  const before = draw();
  const after = draw();
  const x = new Float32Array(N * D);
  const y = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const truth = i < CHANGE_AT ? before : after;
    let z = truth[D]!;
    for (let j = 0; j < D; j++) {
      x[i * D + j] = r() * 2 - 1;
      z += truth[j]! * x[i * D + j]!;
    }
    y[i] = r() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { x, y, before, after };
}

const stream = driftingStream(0x5eed13);
const tail = { x: stream.x.subarray(TAIL_FROM * D), y: stream.y.subarray(TAIL_FROM), n: N - TAIL_FROM };

/**
 * Runs the stream through a learner in mini-batches, each judged by a monitor. Returns the
 * progressive log-loss on the last 10%: every example scored by the committed model before
 * the learner trains on it.
 */
function run(schedule: Schedule, extra: Partial<OnlineLogisticOptions> = {}) {
  const learner = new OnlineLogistic({ dim: D, schedule, l2: 0, maxNorm: 5, ...extra });
  const monitor = new StabilityMonitor();
  const rejected: string[] = [];
  let tailLossSum = 0;
  for (let start = 0; start < N; start += BATCH) {
    const n = Math.min(BATCH, N - start);
    const x = stream.x.subarray(start * D, (start + n) * D);
    const y = stream.y.subarray(start, start + n);
    const skip = Math.max(0, TAIL_FROM - start);
    if (skip < n) tailLossSum += learner.logLoss(x.subarray(skip * D), y.subarray(skip), n - skip) * (n - skip);
    const result = learner.step(x, y, n, monitor);
    if (!result.applied && result.verdict && !result.verdict.ok) rejected.push(`${start / BATCH}:${result.verdict.reason}`);
  }
  return { learner, tailLoss: tailLossSum / tail.n, rejected };
}

describe('online logistic: acceptance (issue #13)', () => {
  const oracle = fitLogistic(tail.x, tail.y, tail.n, D);

  it('the oracle (Newton) agrees with statsmodels on the reference data', () => {
    const ref = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/logistic-reference.json'), 'utf8')) as
      { n: number; d: number; x: number[]; y: number[]; weights: number[]; bias: number; mean_log_loss: number };
    const fit = fitLogistic(Float32Array.from(ref.x), Float64Array.from(ref.y), ref.n, ref.d);
    fit.weights.forEach((w, j) => expect(w).toBeCloseTo(ref.weights[j]!, 8));
    expect(fit.bias).toBeCloseTo(ref.bias, 8);
    expect(fit.meanLogLoss).toBeCloseTo(ref.mean_log_loss, 10);
  });

  it('the change matters: the first half\'s truth scores the last 10% far worse than the oracle', () => {
    const stale = meanLogLoss(tail.x, tail.y, tail.n, D, stream.before.subarray(0, D), stream.before[D]!);
    expect(stale).toBeGreaterThan(1.5 * oracle.meanLogLoss);
  });

  it.each([
    ['constant', { type: 'constant', lr: 1 }],
    ['exponential', { type: 'exponential', lr0: 2, gamma: 0.5, steps: 300 }],
    ['cosine', { type: 'cosine', lr0: 2, lr_min: 0.2, period: 100 }],
    ['adagrad', { type: 'adagrad', lr0: 1 }],
  ])('%s schedule tracks the change: last-10%% log-loss within 10%% of the oracle', (_name, raw) => {
    const { learner, tailLoss, rejected } = run(parseSchedule(raw));
    expect(tailLoss).toBeLessThanOrEqual(1.1 * oracle.meanLogLoss);
    // The monitor judged every update and let this clean stream through.
    expect(rejected).toEqual([]);
    expect(learner.steps).toBe(N / BATCH);
  });

  it('a schedule too timid to follow the change fails the same bar (the bar can fail)', () => {
    const { tailLoss } = run(parseSchedule({ type: 'exponential', lr0: 2, gamma: 0.001, steps: 100 }));
    expect(tailLoss).toBeGreaterThan(1.1 * oracle.meanLogLoss);
  });

  it('a poisonous batch is refused by the monitor and the committed weights stay as they were', () => {
    const learner = new OnlineLogistic({ dim: D, schedule: parseSchedule({ type: 'adagrad', lr0: 1 }), l2: 0, maxNorm: 5 });
    const monitor = new StabilityMonitor();
    for (let b = 0; b < 200; b++) {
      expect(learner.step(stream.x.subarray(b * BATCH * D, (b + 1) * BATCH * D), stream.y.subarray(b * BATCH, (b + 1) * BATCH), BATCH, monitor).applied).toBe(true);
    }
    const good = learner.state();
    const cleanX = stream.x.slice(200 * BATCH * D, 201 * BATCH * D);
    const cleanY = stream.y.slice(200 * BATCH, 201 * BATCH);

    const nanX = cleanX.slice();
    nanX[5] = Number.NaN;
    const hugeRewards = cleanY.map((v, i) => (i % 2 === 0 ? 1e6 : v));
    const hugeX = cleanX.map((v) => v * 1e4);
    const poisons: Array<[string, Float32Array, Float64Array, string[]]> = [
      ['NaN features', nanX, cleanY, ['non_finite']],
      ['huge rewards', cleanX, hugeRewards, ['loss_spike', 'gradient_spike']],
      ['huge features', hugeX, cleanY, ['loss_spike', 'gradient_spike']],
    ];
    for (const [what, x, y, reasons] of poisons) {
      // Unjudged, the batch would move the weights: the refusal is what keeps them.
      expect(learner.propose(x, y, BATCH).params.subarray(0, D), what).not.toEqual(learner.weights());
      const result = learner.step(x, y, BATCH, monitor);
      expect(result.applied, what).toBe(false);
      expect(result.verdict?.ok, what).toBe(false);
      if (result.verdict && !result.verdict.ok) expect(reasons, what).toContain(result.verdict.reason);
      expect(learner.state(), what).toEqual(good);
    }
    expect(learner.step(cleanX, cleanY, BATCH, monitor).applied).toBe(true);
    expect(learner.steps).toBe(201);
  });
});

describe('online logistic: the step', () => {
  const constant = (lr: number): Schedule => parseSchedule({ type: 'constant', lr });
  // Two rows of two features: x = [[1, 2], [3, -1]], y = [1, 0].
  const x = Float32Array.from([1, 2, 3, -1]);
  const y = Float64Array.from([1, 0]);

  it('from zero weights: mean gradient ((0.5, -0.75), 0), loss ln 2, step -lr * gradient', () => {
    const learner = new OnlineLogistic({ dim: 2, schedule: constant(0.5), l2: 0, maxNorm: Number.POSITIVE_INFINITY });
    const r = learner.step(x, y, 2);
    expect(r).toEqual({ loss: Math.LN2, gradNorm: Math.sqrt(0.25 + 0.5625), applied: true });
    expect([...learner.weights()]).toEqual([-0.25, 0.375]);
    expect(learner.bias).toBe(0);
    expect(learner.steps).toBe(1);
  });

  it('clips the gradient to max_norm (global norm, bias included)', () => {
    const learner = new OnlineLogistic({ dim: 2, schedule: constant(0.5), l2: 0, maxNorm: 0.5 });
    const p = learner.propose(x, y, 2);
    expect(p.clipped).toBe(true);
    expect(p.gradNorm).toBeCloseTo(0.9013878188659973, 15); // reported before clipping
    const scale = 0.5 / 0.9013878188659973;
    expect(p.params[0]).toBeCloseTo(-0.5 * 0.5 * scale, 15);
    expect(p.params[1]).toBeCloseTo(0.5 * 0.75 * scale, 15);
  });

  it('adds l2 * w to the weights\' gradient, not the bias\'', () => {
    // w = (1, 0), b = 0.5: z = 1.5 and 3.5; residuals p - y = sigmoid(1.5) - 1, sigmoid(3.5).
    const learner = new OnlineLogistic({ dim: 2, schedule: constant(1), l2: 0.1, maxNorm: Number.POSITIVE_INFINITY }, { weights: [1, 0], bias: 0.5 });
    const s = (z: number): number => 1 / (1 + Math.exp(-z));
    const r0 = s(1.5) - 1;
    const r1 = s(3.5);
    const g = [(r0 * 1 + r1 * 3) / 2 + 0.1 * 1, (r0 * 2 + r1 * -1) / 2 + 0.1 * 0, (r0 + r1) / 2];
    const p = learner.propose(x, y, 2);
    expect(p.params[0]).toBeCloseTo(1 - g[0]!, 14);
    expect(p.params[1]).toBeCloseTo(0 - g[1]!, 14);
    expect(p.params[2]).toBeCloseTo(0.5 - g[2]!, 14);
    expect(p.gradNorm).toBeCloseTo(Math.hypot(...g), 14);
    expect(p.loss).toBeCloseTo((Math.log1p(Math.exp(-1.5)) + Math.log1p(Math.exp(3.5))) / 2, 14);
  });

  it('propose leaves the state alone; commit applies it once, and only on the state it was made from', () => {
    const learner = new OnlineLogistic({ dim: 2, schedule: constant(0.5), l2: 0, maxNorm: Number.POSITIVE_INFINITY });
    const p = learner.propose(x, y, 2);
    expect([...learner.weights()]).toEqual([0, 0]);
    expect(learner.steps).toBe(0);
    learner.commit(p);
    expect([...learner.weights()]).toEqual([-0.25, 0.375]);
    expect(() => learner.commit(p)).toThrow(expect.objectContaining({ code: 'INTERNAL', message: expect.stringContaining('stale') }));
    const other = new OnlineLogistic({ dim: 2, schedule: constant(0.5), l2: 0, maxNorm: Number.POSITIVE_INFINITY });
    expect(() => other.commit(p)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(learner.step(x, y, 2, { judge: () => ({ ok: false, reason: 'loss_drift', detail: 'test' }) })).toMatchObject({ applied: false, verdict: { ok: false, reason: 'loss_drift' } });
    expect(learner.steps).toBe(1);
  });

  it('writes FP32 weights and bias for serving', () => {
    const learner = new OnlineLogistic({ dim: 3, schedule: constant(0.1), l2: 0, maxNorm: 1 }, { weights: [0.1, -2, 1 / 3], bias: 0.7 });
    const w = new Float32Array(3);
    const b = new Float32Array(1);
    learner.writeFp32(w, b);
    expect([...w]).toEqual([Math.fround(0.1), -2, Math.fround(1 / 3)]);
    expect(b[0]).toBe(Math.fround(0.7));
    expect(() => learner.writeFp32(new Float32Array(2), b)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('refuses malformed batches with INVALID_ARGUMENT', () => {
    const learner = new OnlineLogistic({ dim: 2, schedule: constant(0.1), l2: 0, maxNorm: 1 });
    expect(() => learner.propose(x, y, 0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => learner.propose(x, y, 3)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('features') }));
    expect(() => learner.propose(x, y.subarray(0, 1), 2)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('labels') }));
    expect(() => new OnlineLogistic({ dim: 0, schedule: constant(0.1), l2: 0, maxNorm: 1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('online logistic: checkpoints and parameters', () => {
  const adagrad = parseSchedule({ type: 'adagrad', lr0: 0.5 });
  const batch = (b: number) => [stream.x.subarray(b * BATCH * D, (b + 1) * BATCH * D), stream.y.subarray(b * BATCH, (b + 1) * BATCH)] as const;

  it('state() restores into a fresh learner that continues exactly as the original', () => {
    const a = new OnlineLogistic({ dim: D, schedule: adagrad, l2: 0.01, maxNorm: 5 });
    for (let b = 0; b < 20; b++) a.step(...batch(b), BATCH);
    const bytes = a.state();
    const b = new OnlineLogistic({ dim: D, schedule: adagrad, l2: 0.01, maxNorm: 5 });
    b.restore(bytes);
    expect(b.steps).toBe(20);
    expect(b.weights()).toEqual(a.weights());
    a.step(...batch(20), BATCH);
    b.step(...batch(20), BATCH); // AdaGrad's sums came along: the same step follows
    expect(b.state()).toEqual(a.state());
  });

  it('refuses a checkpoint that does not fit with MODEL_LOAD_FAILED', () => {
    const a = new OnlineLogistic({ dim: D, schedule: adagrad, l2: 0, maxNorm: 5 });
    a.step(...batch(0), BATCH);
    const bytes = a.state();
    const fresh = (schedule: Schedule = adagrad, dim = D) => new OnlineLogistic({ dim, schedule, l2: 0, maxNorm: 5 });
    const refused = (target: OnlineLogistic, b: Uint8Array, message: string) =>
      expect(() => target.restore(b)).toThrow(expect.objectContaining({ code: 'MODEL_LOAD_FAILED', message: expect.stringContaining(message) }));
    refused(fresh(), bytes.subarray(0, bytes.length - 8), 'bytes');
    refused(fresh(), new Uint8Array(3), 'not a checkpoint');
    refused(fresh(adagrad, 4), bytes, 'dim 10');
    refused(fresh(parseSchedule({ type: 'constant', lr: 1 })), bytes, 'accumulator');
    const wrongMagic = bytes.slice();
    wrongMagic[0] = wrongMagic[0]! ^ 0xff;
    refused(fresh(), wrongMagic, 'not an online-logistic checkpoint');
    const nan = bytes.slice();
    new DataView(nan.buffer).setFloat64(6 * 8, Number.NaN, true);
    refused(fresh(), nan, 'non-finite');
    const untouched = fresh();
    expect(() => untouched.restore(nan)).toThrow();
    expect(untouched.steps).toBe(0);
  });

  it('reads schedule, l2 and max_norm from manifest parameters', () => {
    expect(parseSgdOptions({ schedule: { type: 'constant', lr: 0.1 }, l2: 0.001, max_norm: 5, batch_size: 32 })).toEqual({ schedule: { type: 'constant', lr: 0.1 }, l2: 0.001, maxNorm: 5 });
    expect(parseSgdOptions({ schedule: { type: 'constant', lr: 0.1 } })).toEqual({ schedule: { type: 'constant', lr: 0.1 }, l2: 0, maxNorm: Number.POSITIVE_INFINITY });
    expect(() => parseSgdOptions({})).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID', message: expect.stringContaining('parameters.schedule') }));
    expect(() => parseSgdOptions({ schedule: { type: 'constant', lr: 0.1 }, l2: -1 })).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID', message: expect.stringContaining('parameters.l2') }));
    expect(() => parseSgdOptions({ schedule: { type: 'constant', lr: 0.1 }, max_norm: 0 })).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID', message: expect.stringContaining('parameters.max_norm') }));
  });
});
