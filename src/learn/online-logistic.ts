/**
 * The `online-logistic` model's learning state: logistic regression trained by mini-batch SGD
 * with a learning-rate schedule (src/learn/schedules.ts), optional L2 and gradient clipping by
 * global norm. Pure computation, no I/O: the learner loop feeds batches, asks the stability
 * monitor about each proposed update, commits or drops it, and publishes FP32 weights.
 *
 * Parameters are kept in FP64 (small steps would vanish in FP32 after a few thousand updates);
 * serving gets an FP32 copy through writeFp32.
 */
import { SluiceError } from '../errors.js';
import { descend, needsAccumulator, parseSchedule, type Schedule } from './schedules.js';
import type { StabilityVerdict, UpdateSummary } from './stability.js';

export interface SgdOptions {
  schedule: Schedule;
  /** L2 penalty strength on the weights (not the bias): the gradient gains l2 * w. */
  l2: number;
  /** Gradients whose global norm exceeds this are scaled down to it (Infinity: no clipping). */
  maxNorm: number;
}

export interface OnlineLogisticOptions extends SgdOptions {
  /** Features per example. */
  dim: number;
}

/** An update computed but not applied: the candidate parameters and what the monitor judges. */
export interface Proposal extends UpdateSummary {
  /** Weights (dim) then bias, after the step. */
  readonly params: Float64Array;
  /** AdaGrad's sums of squared gradients after the step (null for other schedules). */
  readonly accum: Float64Array | null;
  /** Mean log-loss of the batch under the committed parameters (before the step). */
  readonly loss: number;
  /** Global norm of the mean gradient, L2 term included, before clipping. */
  readonly gradNorm: number;
  readonly clipped: boolean;
  /** Updates applied when this was proposed: it can only be committed on top of that state. */
  readonly base: number;
}

export interface StepResult {
  loss: number;
  gradNorm: number;
  applied: boolean;
  /** The monitor's verdict, when one judged the update. */
  verdict?: StabilityVerdict;
}

/** Anything that judges a proposed update (the StabilityMonitor). */
export interface UpdateJudge {
  judge(update: UpdateSummary): StabilityVerdict;
}

/** Reads `schedule`, `l2` and `max_norm` from a manifest's parameters (other keys are the caller's). Throws MANIFEST_INVALID. */
export function parseSgdOptions(parameters: Record<string, unknown>, where = 'parameters'): SgdOptions {
  const l2 = parameters.l2 ?? 0;
  if (typeof l2 !== 'number' || !Number.isFinite(l2) || l2 < 0) throw new SluiceError('MANIFEST_INVALID', `${where}.l2: must be a finite number >= 0`);
  const maxNorm = parameters.max_norm ?? null;
  if (maxNorm !== null && (typeof maxNorm !== 'number' || !Number.isFinite(maxNorm) || maxNorm <= 0)) {
    throw new SluiceError('MANIFEST_INVALID', `${where}.max_norm: must be a finite number > 0 (or null for no clipping)`);
  }
  return { schedule: parseSchedule(parameters.schedule, `${where}.schedule`), l2, maxNorm: maxNorm ?? Number.POSITIVE_INFINITY };
}

/** log(1 + e^z), without overflow for large |z|. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

// Checkpoint layout: little-endian FP64 values [MAGIC, FORMAT, dim, steps, accumLength, params..., accum...].
const MAGIC = 0x4f4c4753; // "OLGS"
const FORMAT = 1;
const HEADER = 5;

function unloadable(what: string): SluiceError {
  return new SluiceError('MODEL_LOAD_FAILED', `online-logistic state: ${what}`);
}

export class OnlineLogistic {
  readonly dim: number;
  readonly options: Readonly<OnlineLogisticOptions>;
  /** Weights (dim) then bias. */
  private params: Float64Array;
  private accum: Float64Array | null;
  private t = 0;
  private readonly issued = new WeakSet<Proposal>();

  constructor(options: OnlineLogisticOptions, initial?: { weights?: ArrayLike<number>; bias?: number }) {
    const { dim, l2, maxNorm } = options;
    if (!Number.isSafeInteger(dim) || dim < 1) throw new SluiceError('INVALID_ARGUMENT', `online-logistic: dim must be an integer >= 1, got ${dim}`);
    if (!(l2 >= 0 && Number.isFinite(l2))) throw new SluiceError('INVALID_ARGUMENT', 'online-logistic: l2 must be a finite number >= 0');
    if (!(maxNorm > 0)) throw new SluiceError('INVALID_ARGUMENT', 'online-logistic: maxNorm must be > 0 (Infinity for no clipping)');
    this.dim = dim;
    this.options = Object.freeze({ ...options });
    this.params = new Float64Array(dim + 1);
    if (initial?.weights) {
      if (initial.weights.length !== dim) throw new SluiceError('INVALID_ARGUMENT', `online-logistic: ${initial.weights.length} initial weights for dim ${dim}`);
      this.params.set(initial.weights);
    }
    this.params[dim] = initial?.bias ?? 0;
    this.accum = needsAccumulator(options.schedule) ? new Float64Array(dim + 1) : null;
  }

  /** Updates applied so far (what answers report as their state). */
  get steps(): number {
    return this.t;
  }

  /** A copy of the committed weights. */
  weights(): Float64Array {
    return this.params.slice(0, this.dim);
  }

  get bias(): number {
    return this.params[this.dim]!;
  }

  /** Writes the committed parameters as FP32 for serving: `w` (dim) and `bias[0]`. */
  writeFp32(w: Float32Array, bias: Float32Array): void {
    if (w.length !== this.dim || bias.length < 1) throw new SluiceError('INVALID_ARGUMENT', `online-logistic: writeFp32 needs w of ${this.dim} and bias of 1, got ${w.length} and ${bias.length}`);
    for (let j = 0; j < this.dim; j++) w[j] = this.params[j]!;
    bias[0] = this.params[this.dim]!;
  }

  /** P(y = 1 | x) for n rows of x (n x dim), under the committed parameters. */
  predict(x: Float32Array, n: number, out = new Float64Array(n)): Float64Array {
    this.checkBatch(x, null, n);
    for (let i = 0; i < n; i++) out[i] = sigmoid(this.margin(this.params, x, i));
    return out;
  }

  /** Mean log-loss of n examples under the committed parameters. */
  logLoss(x: Float32Array, y: Float64Array, n: number): number {
    this.checkBatch(x, y, n);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const z = this.margin(this.params, x, i);
      sum += softplus(z) - y[i]! * z;
    }
    return sum / n;
  }

  /**
   * Computes one SGD step on a mini-batch of n examples (x: n x dim, row-major; y: labels in
   * [0, 1]) without applying it. Labels are not range-checked: a batch of absurd labels shows
   * as a huge gradient, which is the stability monitor's call.
   */
  propose(x: Float32Array, y: Float64Array, n: number): Proposal {
    this.checkBatch(x, y, n);
    const d = this.dim;
    const grad = new Float64Array(d + 1);
    let lossSum = 0;
    for (let i = 0; i < n; i++) {
      const z = this.margin(this.params, x, i);
      const yi = y[i]!;
      lossSum += softplus(z) - yi * z;
      const r = sigmoid(z) - yi;
      const row = i * d;
      for (let j = 0; j < d; j++) grad[j] = grad[j]! + r * x[row + j]!;
      grad[d] = grad[d]! + r;
    }
    let sq = 0;
    for (let j = 0; j <= d; j++) {
      grad[j] = grad[j]! / n + (j < d ? this.options.l2 * this.params[j]! : 0);
      sq += grad[j]! * grad[j]!;
    }
    const gradNorm = Math.sqrt(sq);
    const clipped = gradNorm > this.options.maxNorm;
    if (clipped) {
      const scale = this.options.maxNorm / gradNorm;
      for (let j = 0; j <= d; j++) grad[j] = grad[j]! * scale;
    }
    const params = this.params.slice();
    const accum = this.accum ? this.accum.slice() : null;
    descend(this.options.schedule, this.t, grad, params, accum);
    const proposal: Proposal = Object.freeze({ params, accum, loss: lossSum / n, gradNorm, clipped, base: this.t });
    this.issued.add(proposal);
    return proposal;
  }

  /** Applies a proposal computed by this learner on its current state. */
  commit(p: Proposal): void {
    if (!this.issued.has(p)) throw new SluiceError('INTERNAL', 'online-logistic: commit of a proposal this learner did not make');
    if (p.base !== this.t) throw new SluiceError('INTERNAL', `online-logistic: stale proposal (made at step ${p.base}, state is at ${this.t})`);
    this.params = p.params.slice();
    this.accum = p.accum ? p.accum.slice() : null;
    this.t++;
  }

  /** propose, ask `judge` (if any), commit when it agrees. */
  step(x: Float32Array, y: Float64Array, n: number, judge?: UpdateJudge): StepResult {
    const p = this.propose(x, y, n);
    const verdict = judge?.judge(p);
    const applied = verdict === undefined || verdict.ok;
    if (applied) this.commit(p);
    return { loss: p.loss, gradNorm: p.gradNorm, applied, ...(verdict ? { verdict } : {}) };
  }

  /** The learning state (parameters, step count, AdaGrad sums) as bytes for a checkpoint. */
  state(): Uint8Array {
    const accumLength = this.accum?.length ?? 0;
    const values = [MAGIC, FORMAT, this.dim, this.t, accumLength, ...this.params, ...(this.accum ?? [])];
    const bytes = new Uint8Array(values.length * 8);
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => view.setFloat64(i * 8, v, true));
    return bytes;
  }

  /** Replaces the learning state with a checkpoint's. Throws MODEL_LOAD_FAILED if it does not fit this learner. */
  restore(bytes: Uint8Array): void {
    if (bytes.length % 8 !== 0 || bytes.length < HEADER * 8) throw unloadable(`${bytes.length} bytes is not a checkpoint`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const at = (i: number): number => view.getFloat64(i * 8, true);
    if (at(0) !== MAGIC || at(1) !== FORMAT) throw unloadable('not an online-logistic checkpoint (or an unknown format)');
    const dim = at(2);
    const steps = at(3);
    const accumLength = at(4);
    if (dim !== this.dim) throw unloadable(`dim ${dim}, the model has ${this.dim}`);
    if (!Number.isSafeInteger(steps) || steps < 0) throw unloadable(`bad step count ${steps}`);
    const wantAccum = this.accum ? this.dim + 1 : 0;
    if (accumLength !== wantAccum) throw unloadable(`${accumLength} accumulator values, the ${this.options.schedule.type} schedule needs ${wantAccum}`);
    if (bytes.length !== (HEADER + this.dim + 1 + accumLength) * 8) throw unloadable(`${bytes.length} bytes, expected ${(HEADER + this.dim + 1 + accumLength) * 8}`);
    const params = new Float64Array(this.dim + 1);
    for (let j = 0; j <= this.dim; j++) params[j] = at(HEADER + j);
    const accum = accumLength > 0 ? new Float64Array(accumLength) : null;
    for (let j = 0; j < accumLength; j++) accum![j] = at(HEADER + this.dim + 1 + j);
    if (!params.every(Number.isFinite) || (accum && !accum.every((v) => Number.isFinite(v) && v >= 0))) throw unloadable('non-finite values');
    this.params = params;
    this.accum = accum;
    this.t = steps;
  }

  private margin(params: Float64Array, x: Float32Array, i: number): number {
    const d = this.dim;
    const row = i * d;
    let z = params[d]!;
    for (let j = 0; j < d; j++) z += params[j]! * x[row + j]!;
    return z;
  }

  private checkBatch(x: Float32Array, y: Float64Array | null, n: number): void {
    if (!Number.isSafeInteger(n) || n < 1) throw new SluiceError('INVALID_ARGUMENT', `online-logistic: batch size must be an integer >= 1, got ${n}`);
    if (x.length < n * this.dim) throw new SluiceError('INVALID_ARGUMENT', `online-logistic: ${x.length} features for ${n} rows of ${this.dim}`);
    if (y && y.length < n) throw new SluiceError('INVALID_ARGUMENT', `online-logistic: ${y.length} labels for ${n} rows`);
  }
}
