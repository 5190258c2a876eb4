/**
 * The only import of the Rust addon (native/). Everything else imports kernels from here.
 *
 * The addon throws errors with a stable `code`: its own argument checks use ERR_NATIVE_*, while
 * napi-rs's conversion of a wrong JS type arrives as code `InvalidArg` (`NumberExpected`, ... for
 * scalars) with a terse message. `guard` folds the latter into ERR_NATIVE_INVALID_ARGUMENT naming the function, so callers
 * see one family of codes. The wrappers have fixed arity so V8 inlines them on the hot path.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type * as Binding from '../native/index.js';
import { projectRoot } from './paths.js';

export type Rng = Binding.Rng;

/** Activation codes understood by `gemv` (must match native/src/kernels/activation.rs). */
export const Activation = { none: 0, sigmoid: 1, softmax: 2 } as const;
export type ActivationName = keyof typeof Activation;

function findAddon(): string {
  const file = path.join(projectRoot, 'native', 'sluice-native.node');
  if (existsSync(file)) return file;
  throw Object.assign(
    new Error('native addon native/sluice-native.node not found: run `npm install` (or `npm run build:native`)'),
    { code: 'ERR_NATIVE_MISSING' },
  );
}

const binding = createRequire(import.meta.url)(findAddon()) as typeof Binding;

/** napi-rs statuses for a JS value of the wrong type (typed arrays: InvalidArg; numbers, strings...). */
const WRONG_TYPE = new Set(['InvalidArg', 'NumberExpected', 'StringExpected', 'BooleanExpected', 'ObjectExpected', 'BigintExpected']);

function normalise(fn: string, err: unknown): unknown {
  if (err instanceof Error && WRONG_TYPE.has((err as { code?: string }).code ?? '')) {
    return Object.assign(new Error(`${fn}: wrong argument type (${err.message})`), {
      code: 'ERR_NATIVE_INVALID_ARGUMENT',
    });
  }
  return err;
}

/** Instruction set chosen at load: "avx2+fma" or "scalar" (forced with SLUICE_SIMD=scalar). */
export const simdLevel: string = binding.simdLevel();

/**
 * Finds and parses the number arrays at `inputs[*].data` of a JSON inference request
 * (native/src/json_numbers.rs): per array, (start, end, first value, count) in `spans`, values
 * in `values`. Returns how many; -1 when the body must go to JSON.parse alone; -2 when `spans`
 * or `values` is too small. When the request is in the plain form nearly every client sends,
 * `layout[0]` is 1 and `layout` says where its parts are (see JSON_LAYOUT); otherwise 0.
 */
export function scanJsonNumberArrays(body: Uint8Array, minElements: number, spans: Uint32Array, values: Float64Array, layout: Uint32Array): number {
  try {
    return binding.scanJsonNumberArrays(body, minElements, spans, values, layout);
  } catch (e) {
    throw normalise('scanJsonNumberArrays', e);
  }
}

/**
 * The plain-form layout written by scanJsonNumberArrays (constants of native/src/json_numbers.rs):
 * a head of `head` u32 (plain form 0/1, has id 0/1, id start, id end, input count, reserved),
 * then `input` u32 per input (name start, name end, datatype start, datatype end, index of its
 * data array in `spans`, dimension count, up to `maxDims` dimensions).
 */
export const JSON_LAYOUT = { head: 8, input: 14, maxDims: 8 } as const;

/**
 * Index of the first NaN or infinite element of a raw float tensor, or -1: FP32, FP64, or FP16
 * as raw 16-bit patterns (native/src/kernels/finite.rs, SIMD when available). Called per
 * binary tensor on the hot path: a plain number back, no exception to catch.
 */
export function firstNonFiniteF32(x: Float32Array): number {
  return binding.firstNonFiniteF32(x);
}

export function firstNonFiniteF64(x: Float64Array): number {
  return binding.firstNonFiniteF64(x);
}

export function firstNonFiniteF16(x: Uint16Array): number {
  return binding.firstNonFiniteF16(x);
}

/** The scalar reference of the finite checks over raw little-endian bytes (for tests, benchmarks). */
export function firstNonFiniteScalar(bytes: Uint8Array, datatype: 'FP32' | 'FP64' | 'FP16'): number {
  try {
    return binding.firstNonFiniteScalar(bytes, datatype === 'FP32' ? 0 : datatype === 'FP64' ? 1 : 2);
  } catch (e) {
    throw normalise('firstNonFiniteScalar', e);
  }
}

export function dot(a: Float32Array, b: Float32Array): number {
  try {
    return binding.dot(a, b);
  } catch (e) {
    throw normalise('dot', e);
  }
}

export function dotScalar(a: Float32Array, b: Float32Array): number {
  try {
    return binding.dotScalar(a, b);
  } catch (e) {
    throw normalise('dotScalar', e);
  }
}

/**
 * `out[r*outputs + o] = act(x[r,:] . w[o,:] + bias[o])`; x is rows x cols, w outputs x cols,
 * bias empty or `outputs` long, out rows x outputs (must not overlap the inputs).
 */
export function gemv(
  x: Float32Array, rows: number, cols: number, w: Float32Array, outputs: number,
  bias: Float32Array, activation: number, out: Float32Array,
): void {
  try {
    binding.gemv(x, rows, cols, w, outputs, bias, activation, out);
  } catch (e) {
    throw normalise('gemv', e);
  }
}

export function gemvScalar(
  x: Float32Array, rows: number, cols: number, w: Float32Array, outputs: number,
  bias: Float32Array, activation: number, out: Float32Array,
): void {
  try {
    binding.gemvScalar(x, rows, cols, w, outputs, bias, activation, out);
  } catch (e) {
    throw normalise('gemvScalar', e);
  }
}

/** LinUCB scores for K arms into `out` (K); aInv K*d*d, b K*d, x d. */
export function linucbScores(aInv: Float64Array, b: Float64Array, x: Float64Array, alpha: number, out: Float64Array): void {
  try {
    binding.linucbScores(aInv, b, x, alpha, out);
  } catch (e) {
    throw normalise('linucbScores', e);
  }
}

/** Sherman-Morrison update of one arm in place; false (and no change) if singular. */
export function shermanMorrisonUpdate(aInv: Float64Array, b: Float64Array, x: Float64Array, reward: number): boolean {
  try {
    return binding.shermanMorrisonUpdate(aInv, b, x, reward);
  } catch (e) {
    throw normalise('shermanMorrisonUpdate', e);
  }
}

/**
 * Linear-bandit arm statistics for `rows` FP32 context rows (x: rows*d) over K arms (native/src/
 * bandit/linear.rs, SIMD when available): means[r*K+k] = x_r . (A_k^-1 b_k) and
 * widths[r*K+k] = sqrt(max(0, x_r' A_k^-1 x_r)). aInv K*d*d (symmetric per arm), b K*d, means and
 * widths rows*K; K = means.length / rows, d = b.length / K. LinUCB scores mean + alpha*width,
 * linear Thompson samples mean + v*width*N(0,1), epsilon-greedy uses the means. The arrays may be
 * views on SharedArrayBuffers. Non-finite x: ERR_NATIVE_INVALID_ARGUMENT; sizes that do not fit:
 * ERR_NATIVE_SHAPE_MISMATCH; an output overlapping another array: ERR_NATIVE_ALIASED_ARGUMENT.
 */
export function linearArmStats(aInv: Float64Array, b: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void {
  try {
    binding.linearArmStats(aInv, b, x, rows, means, widths);
  } catch (e) {
    throw normalise('linearArmStats', e);
  }
}

/**
 * f64 values of a linear bandit's serving form (`linearServingForm`) for `arms` arms of `d`
 * features: about a quarter of A^-1's K*d*d (its upper triangle is stored as f32, two to a value).
 */
export function linearServingFormLength(arms: number, d: number): number {
  try {
    return binding.linearServingFormLength(arms, d);
  } catch (e) {
    throw normalise('linearServingFormLength', e);
  }
}

/**
 * Writes the serving form of a linear bandit's state (aInv K*d*d symmetric per arm, b K*d) into
 * `out` (linearServingFormLength(K, d)): per arm A^-1 b and A^-1's diagonal, and its upper
 * triangle in f32 (native/src/bandit/serving_form.rs). `linearServingStats` reads it instead of
 * the state: the same means up to rounding, widths to f32 rounding (~1e-6 relative; the answer's
 * scores are FP32), from under a third of the bytes. Build it once per published state.
 */
export function linearServingForm(aInv: Float64Array, b: Float64Array, out: Float64Array): void {
  try {
    binding.linearServingForm(aInv, b, out);
  } catch (e) {
    throw normalise('linearServingForm', e);
  }
}

/** linearArmStats from a serving form: form linearServingFormLength(K, d), x rows*d, means and widths rows*K. */
export function linearServingStats(form: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void {
  try {
    binding.linearServingStats(form, x, rows, means, widths);
  } catch (e) {
    throw normalise('linearServingStats', e);
  }
}

/** The scalar reference of linearServingStats (same arguments), for tests and benchmarks. */
export function linearServingStatsScalar(form: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void {
  try {
    binding.linearServingStatsScalar(form, x, rows, means, widths);
  } catch (e) {
    throw normalise('linearServingStatsScalar', e);
  }
}

/** The scalar reference of linearArmStats (same arguments), for tests and benchmarks. */
export function linearArmStatsScalar(aInv: Float64Array, b: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void {
  try {
    binding.linearArmStatsScalar(aInv, b, x, rows, means, widths);
  } catch (e) {
    throw normalise('linearArmStatsScalar', e);
  }
}

/**
 * Applies n learning events to a LinUCB state in order: for event i with k = arms[i],
 * Sherman-Morrison on A_k^-1 (aInv), A_k += x_i x_i' (a), b_k += rewards[i] x_i (b). aInv and a
 * are K*d*d, b K*d, arms n, x n*d (FP32), rewards n. Returns how many were applied: an event whose
 * update is singular or would write a non-finite value is skipped, on all three arrays. An arm
 * out of range or a non-finite x or reward (ERR_NATIVE_INVALID_ARGUMENT), or sizes that do not
 * fit (ERR_NATIVE_SHAPE_MISMATCH), refuse the whole batch before anything changes. A^-1 stays
 * exactly symmetric.
 */
export function linucbLearn(aInv: Float64Array, a: Float64Array, b: Float64Array, arms: Uint32Array, x: Float32Array, rewards: Float64Array): number {
  try {
    return binding.linucbLearn(aInv, a, b, arms, x, rewards);
  } catch (e) {
    throw normalise('linucbLearn', e);
  }
}

/**
 * Inverse of a symmetric positive-definite d x d matrix `a` into `out` (d*d) by Cholesky; false,
 * with `out` untouched, when `a` is not symmetric (beyond 1e-9 relative) or not positive
 * definite. For rebuilding A^-1 from the additive A (merged replica deltas, drift resets). A
 * non-finite `a` throws ERR_NATIVE_INVALID_ARGUMENT.
 */
export function invertSpd(a: Float64Array, out: Float64Array): boolean {
  try {
    return binding.invertSpd(a, out);
  } catch (e) {
    throw normalise('invertSpd', e);
  }
}

const LINEAR_STATUS: Record<number, [string, string]> = {
  1: ['ERR_NATIVE_INVALID_ARGUMENT', 'model handle is not live on this thread (released, or created on another thread)'],
  2: ['ERR_NATIVE_INVALID_ARGUMENT', 'rows must be a non-negative integer'],
  3: ['ERR_NATIVE_SHAPE_MISMATCH', 'x length must be rows * cols'],
  4: ['ERR_NATIVE_SHAPE_MISMATCH', 'out length must be rows * outputs'],
  5: ['ERR_NATIVE_ALIASED_ARGUMENT', 'out overlaps x'],
};

// Native memory of kernels that were never disposed is returned when they are collected.
const linearFinalizer = new FinalizationRegistry<number>((handle) => binding.linearRelease(handle));

/** What LinearKernel.adopt was given: a handle the addon has made already. */
class AdoptedHandle {
  constructor(readonly handle: number) {}
}

/**
 * A linear/logistic model whose weights live in native memory, so each prediction passes only
 * its input and output arrays across N-API (the cheapest call shape: every typed-array argument
 * costs ~0.1 us to cross). The kernel's handle is valid on the thread that made it; other
 * threads of the process use the same weights, without a copy, through `share` and `adopt`.
 */
export class LinearKernel {
  private handle: number;

  /** Copies `w` (outputs x cols, row-major) and `bias` (empty or `outputs`) into native memory. */
  constructor(w: Float32Array, bias: Float32Array, cols: number, outputs: number, activation: number);
  constructor(w: Float32Array | AdoptedHandle, bias: Float32Array, readonly cols: number, readonly outputs: number, activation: number) {
    if (w instanceof AdoptedHandle) {
      this.handle = w.handle;
    } else {
      try {
        this.handle = binding.linearCreate(w, bias, cols, outputs, activation);
      } catch (e) {
        throw normalise('LinearKernel', e);
      }
    }
    linearFinalizer.register(this, this.handle, this);
  }

  /**
   * This thread's own kernel onto weights another thread shared with `share()`, without copying
   * them. `cols`, `outputs` and, when given, `activation` must be the model's
   * (ERR_NATIVE_SHAPE_MISMATCH otherwise). A token never issued or already forgotten throws
   * ERR_NATIVE_UNKNOWN_TOKEN.
   */
  static adopt(token: number, cols: number, outputs: number, activation?: number): LinearKernel {
    let handle: number;
    try {
      handle = binding.linearImport(token, cols, outputs, activation);
    } catch (e) {
      throw normalise('LinearKernel.adopt', e);
    }
    // The implementation signature takes the handle; the public one does not offer it.
    const Adopting = LinearKernel as unknown as new (h: AdoptedHandle, b: Float32Array, c: number, o: number, a: number) => LinearKernel;
    return new Adopting(new AdoptedHandle(handle), NO_BIAS, cols, outputs, 0);
  }

  /**
   * Shares this kernel's weights with the other threads of the process: returns a token that
   * `LinearKernel.adopt` accepts on any thread (main, I/O or pool worker) until
   * `forgetSharedLinear(token)`. Nothing is copied. Each call makes a new token; forget every
   * one once the threads that needed it have adopted it (their kernels keep the weights alive).
   */
  share(): number {
    try {
      return binding.linearExport(this.handle);
    } catch (e) {
      throw normalise('LinearKernel.share', e);
    }
  }

  /** Computes `rows` rows of `x` (rows x cols) into `out` (rows x outputs). */
  run(x: Float32Array, rows: number, out: Float32Array): void {
    let status: number;
    try {
      status = binding.linearRun(this.handle, x, rows, out);
    } catch (e) {
      throw normalise('LinearKernel.run', e);
    }
    if (status !== 0) {
      const [code, message] = LINEAR_STATUS[status] ?? ['ERR_NATIVE_INTERNAL', `linear kernel failed (status ${status})`];
      throw Object.assign(new Error(`LinearKernel.run: ${message}`), { code });
    }
  }

  /** Frees this thread's handle; the weights go with the last handle or token on any thread. */
  dispose(): void {
    if (this.handle === 0) return;
    linearFinalizer.unregister(this);
    binding.linearRelease(this.handle);
    this.handle = 0;
  }
}

const NO_BIAS = new Float32Array(0);

/**
 * Drops a token of `LinearKernel.share`, so it can no longer be adopted; false if it was
 * unknown (already forgotten). Kernels that adopted it keep the weights until disposed.
 */
export function forgetSharedLinear(token: number): boolean {
  try {
    return binding.linearForget(token);
  } catch (e) {
    throw normalise('forgetSharedLinear', e);
  }
}

/**
 * How many shared linear models (shared at least once) are still alive in the process, held by
 * a kernel on some thread or by a token not forgotten. For tests: it returns to its former value
 * once every kernel is disposed and every token forgotten.
 */
export function linearSharedLive(): number {
  return binding.linearSharedLive();
}

/**
 * Seeded xoshiro256++ generator with Gamma/Beta samplers and Thompson selection: thompsonSelect,
 * and thompsonNormal / thompsonBeta(params, params, draws, probs?) that return the picked arm and,
 * given `probs` and draws > 0, estimate each arm's probability of being picked (sum 1).
 */
export function createRng(seed: number): Rng {
  try {
    return new binding.Rng(seed);
  } catch (e) {
    throw normalise('Rng', e);
  }
}

/**
 * Sets the calling thread's nice value (0..19, lowering only: native/src/thread_priority.rs);
 * false where unsupported (not Linux) or refused.
 */
export function lowerCurrentThreadPriority(nice: number): boolean {
  return binding.lowerCurrentThreadPriority(nice);
}

/**
 * CPU time (ms) the calling thread has used (native/src/thread_clock.rs); -1 where the clock is
 * unavailable.
 */
export function currentThreadCpuMs(): number {
  return binding.currentThreadCpuMs();
}

/** A TCP socket made by listenReusePort/reserveReusePort: its descriptor and bound port. */
export type ReusePortSocket = Binding.ReusePortSocket;

/**
 * A nonblocking TCP socket listening on `host:port` (an IP literal; port 0: the kernel's choice)
 * with SO_REUSEADDR and SO_REUSEPORT (native/src/reuseport.rs). Sockets on the same port form a
 * group over which the kernel spreads connections. The caller owns the descriptor: give it to
 * `net.Server.listen({ fd })` or closeReusePort. OS refusals throw ERR_NATIVE_SOCKET.
 */
export function listenReusePort(host: string, port: number, backlog = 0): ReusePortSocket {
  try {
    return binding.listenReusePort(host, port, backlog);
  } catch (e) {
    throw normalise('listenReusePort', e);
  }
}

/**
 * A SO_REUSEPORT socket bound to `host:port` but not listening: it holds the port and takes no
 * connections, while servers that make their own SO_REUSEPORT sockets start on it (uWebSockets.js
 * sets SO_REUSEPORT only for a nonzero port). Close it with closeReusePort afterwards.
 */
export function reserveReusePort(host: string, port: number): ReusePortSocket {
  try {
    return binding.reserveReusePort(host, port);
  } catch (e) {
    throw normalise('reserveReusePort', e);
  }
}

/** Closes a socket of listenReusePort/reserveReusePort never handed to Node; refuses other descriptors. */
export function closeReusePort(fd: number): void {
  try {
    binding.closeReusePort(fd);
  } catch (e) {
    throw normalise('closeReusePort', e);
  }
}
