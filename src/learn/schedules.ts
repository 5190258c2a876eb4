/**
 * Learning-rate schedules for the online learner, read from a manifest's parameters
 * (snake_case JSON, `{"type": ..., ...}`):
 *   constant     {lr}                     lr
 *   exponential  {lr0, gamma, steps}      lr0 * gamma^(t / steps)
 *   cosine       {lr0, lr_min, period}    lr_min + (lr0 - lr_min) * (1 + cos(pi * (t mod T) / T)) / 2,
 *                                         restarting every T = period steps
 *   adagrad      {lr0, eps}               per coordinate j: lr0 / (sqrt(G_j) + eps), G_j the sum of
 *                                         the squared gradients of j so far (this step's included)
 * `t` is the number of updates applied before this one (the first update uses t = 0).
 */
import { SluiceError } from '../errors.js';

export interface ConstantSchedule { type: 'constant'; lr: number }
export interface ExponentialSchedule { type: 'exponential'; lr0: number; gamma: number; steps: number }
export interface CosineSchedule { type: 'cosine'; lr0: number; lrMin: number; period: number }
export interface AdaGradSchedule { type: 'adagrad'; lr0: number; eps: number }

export type Schedule = Readonly<ConstantSchedule | ExponentialSchedule | CosineSchedule | AdaGradSchedule>;
/** The schedules whose rate depends only on t. */
export type ScalarSchedule = Exclude<Schedule, AdaGradSchedule>;

export const SCHEDULE_TYPES = ['constant', 'exponential', 'cosine', 'adagrad'] as const;

export const ADAGRAD_DEFAULT_EPS = 1e-8;

/** The rate at step t of a schedule that depends only on t. */
export function scalarRate(s: ScalarSchedule, t: number): number {
  switch (s.type) {
    case 'constant':
      return s.lr;
    case 'exponential':
      return s.lr0 * s.gamma ** (t / s.steps);
    case 'cosine':
      return s.lrMin + (s.lr0 - s.lrMin) * (1 + Math.cos(Math.PI * (t % s.period) / s.period)) / 2;
  }
}

/** AdaGrad's rate for a coordinate whose squared gradients sum to `sumSq`. */
export function adagradRate(s: Readonly<AdaGradSchedule>, sumSq: number): number {
  return s.lr0 / (Math.sqrt(sumSq) + s.eps);
}

/** Whether the schedule keeps per-coordinate state (AdaGrad's sums of squared gradients). */
export function needsAccumulator(s: Schedule): s is Readonly<AdaGradSchedule> {
  return s.type === 'adagrad';
}

/**
 * One descent step at update t: `params -= rate * grad`, coordinate by coordinate. For AdaGrad
 * `accum` (as long as `params`) first gains grad^2; other schedules ignore it.
 */
export function descend(s: Schedule, t: number, grad: Float64Array, params: Float64Array, accum: Float64Array | null): void {
  if (needsAccumulator(s)) {
    if (!accum || accum.length !== params.length) throw new SluiceError('INTERNAL', 'adagrad needs an accumulator as long as the parameters');
    for (let j = 0; j < params.length; j++) {
      const g = grad[j]!;
      accum[j] = accum[j]! + g * g;
      params[j] = params[j]! - adagradRate(s, accum[j]!) * g;
    }
    return;
  }
  const rate = scalarRate(s, t);
  for (let j = 0; j < params.length; j++) params[j] = params[j]! - rate * grad[j]!;
}

function bad(where: string, what: string): SluiceError {
  return new SluiceError('MANIFEST_INVALID', `${where}: ${what}`);
}

const FIELDS: Record<Schedule['type'], string[]> = {
  constant: ['type', 'lr'],
  exponential: ['type', 'lr0', 'gamma', 'steps'],
  cosine: ['type', 'lr0', 'lr_min', 'period'],
  adagrad: ['type', 'lr0', 'eps'],
};

/** A finite number in (min, max] (or [min, max] when `closedMin`); `dflt` when absent, if given. */
function num(o: Record<string, unknown>, key: string, where: string, range: { min: number; max: number; closedMin?: boolean }, dflt?: number): number {
  const v = o[key];
  if (v === undefined && dflt !== undefined) return dflt;
  const { min, max, closedMin = false } = range;
  const ok = typeof v === 'number' && Number.isFinite(v) && (closedMin ? v >= min : v > min) && v <= max;
  if (!ok) throw bad(`${where}.${key}`, `${v === undefined ? 'is required: ' : ''}must be a number in ${closedMin ? '[' : '('}${min}, ${max}]`);
  return v as number;
}

function positiveInt(o: Record<string, unknown>, key: string, where: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw bad(`${where}.${key}`, `${v === undefined ? 'is required: ' : ''}must be an integer >= 1`);
  return v;
}

/** Rates above this are a typo, not a schedule. */
const MAX_RATE = 1e6;

/** Reads a schedule object (the value of, say, `parameters.schedule`). Throws MANIFEST_INVALID naming the field. */
export function parseSchedule(raw: unknown, where = 'parameters.schedule'): Schedule {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(where, 'must be an object with a "type"');
  const o = raw as Record<string, unknown>;
  const type = o.type;
  if (typeof type !== 'string' || !(SCHEDULE_TYPES as readonly string[]).includes(type)) {
    throw bad(`${where}.type`, `must be one of ${SCHEDULE_TYPES.join(', ')}`);
  }
  const t = type as Schedule['type'];
  for (const k of Object.keys(o)) {
    if (!FIELDS[t].includes(k)) throw bad(`${where}.${k}`, `unknown field for a ${t} schedule (expected ${FIELDS[t].join(', ')})`);
  }
  const rate = { min: 0, max: MAX_RATE };
  switch (t) {
    case 'constant':
      return Object.freeze({ type: t, lr: num(o, 'lr', where, rate) });
    case 'exponential':
      return Object.freeze({ type: t, lr0: num(o, 'lr0', where, rate), gamma: num(o, 'gamma', where, { min: 0, max: 1 }), steps: positiveInt(o, 'steps', where) });
    case 'cosine': {
      const lr0 = num(o, 'lr0', where, rate);
      const lrMin = num(o, 'lr_min', where, { min: 0, max: lr0, closedMin: true }, 0);
      return Object.freeze({ type: t, lr0, lrMin, period: positiveInt(o, 'period', where) });
    }
    case 'adagrad':
      return Object.freeze({ type: t, lr0: num(o, 'lr0', where, rate), eps: num(o, 'eps', where, { min: 0, max: 1 }, ADAGRAD_DEFAULT_EPS) });
  }
}

/** The schedule in its manifest (snake_case) form; parseSchedule(scheduleToJSON(s)) equals s. */
export function scheduleToJSON(s: Schedule): Record<string, unknown> {
  switch (s.type) {
    case 'constant':
      return { type: s.type, lr: s.lr };
    case 'exponential':
      return { type: s.type, lr0: s.lr0, gamma: s.gamma, steps: s.steps };
    case 'cosine':
      return { type: s.type, lr0: s.lr0, lr_min: s.lrMin, period: s.period };
    case 'adagrad':
      return { type: s.type, lr0: s.lr0, eps: s.eps };
  }
}
