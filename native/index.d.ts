/**
 * Seeded pseudo-random generator (xoshiro256++) with the bandit samplers. The same seed gives
 * the same sequence on every machine.
 */
export declare class Rng {
  /** `seed`: an integer in [0, 2^53). */
  constructor(seed: number)
  /** Uniform in [0, 1). */
  nextF64(): number
  /** Standard normal sample. */
  normal(): number
  /** Gamma(shape, scale) sample (Marsaglia-Tsang). `scale` defaults to 1. */
  gamma(shape: number, scale?: number | undefined | null): number
  /** Beta(a, b) sample. */
  beta(a: number, b: number): number
  /** Fills `out` with Gamma(shape, scale) samples. */
  fillGamma(shape: number, scale: number, out: Float64Array): void
  /** Fills `out` with Beta(a, b) samples. */
  fillBeta(a: number, b: number, out: Float64Array): void
  /**
   * Thompson sampling over K Beta(alpha_k, beta_k) arms: returns the arm with the largest
   * sample. When `samples` (K long) is given, the drawn samples are written to it.
   */
  thompsonSelect(alphas: Float64Array, betas: Float64Array, samples?: Float64Array | undefined | null): number
  /**
   * Thompson sampling over K Normal(means[k], sds[k]^2) posteriors: draws one sample per arm
   * and returns the arm with the largest (ties to the lowest index). `sds[k]` = 0 is a point
   * mass. When `probs` (K) is given and `draws` > 0, also estimates each arm's probability of
   * being picked from `draws` further independent rounds and writes it to `probs` (sum 1);
   * with `draws` = 0 `probs` is left as it is.
   */
  thompsonNormal(means: Float64Array, sds: Float64Array, draws: number, probs?: Float64Array | undefined | null): number
  /**
   * Thompson sampling over K Beta(alphas[k], betas[k]) posteriors, with the contract of
   * [`Rng::thompson_normal`] (parameters finite and > 0).
   */
  thompsonBeta(alphas: Float64Array, betas: Float64Array, draws: number, probs?: Float64Array | undefined | null): number
}

/**
 * Closes a socket from [`listen_reuse_port`] or [`reserve_reuse_port`] that was never handed
 * to Node. A descriptor that is not a SO_REUSEPORT socket without a peer is refused
 * (ERR_NATIVE_INVALID_ARGUMENT) and left open.
 */
export declare function closeReusePort(fd: number): void

/**
 * CPU time the calling thread has used, in milliseconds (CLOCK_THREAD_CPUTIME_ID); -1 where
 * that clock is unavailable.
 */
export declare function currentThreadCpuMs(): number

/** Dot product of two Float32Arrays of equal length (SIMD when available). */
export declare function dot(a: Float32Array, b: Float32Array): number

/** Scalar reference dot product (sequential f32 accumulation). */
export declare function dotScalar(a: Float32Array, b: Float32Array): number

/**
 * Index of the first NaN or infinite IEEE half (raw 16-bit patterns: exponent bits all ones)
 * in a Uint16Array, or -1 (SIMD when available).
 */
export declare function firstNonFiniteF16(x: Uint16Array): number

/**
 * Index of the first NaN or infinite element of a Float32Array, or -1 (SIMD when available).
 * Per-request call on binary tensors: it returns a number and never throws.
 */
export declare function firstNonFiniteF32(x: Float32Array): number

/** Index of the first NaN or infinite element of a Float64Array, or -1 (SIMD when available). */
export declare function firstNonFiniteF64(x: Float64Array): number

/**
 * Scalar reference of the finite checks: `kind` 0 FP32, 1 FP64, 2 FP16 over the array's raw
 * little-endian bytes (whole elements only). For tests and benchmarks.
 */
export declare function firstNonFiniteScalar(bytes: Uint8Array, kind: number): number

/**
 * Batched GEMV: `out[r*outputs + o] = act(dot(x[r, :], w[o, :]) + bias[o])`.
 *
 * `x` is `rows x cols` row-major, `w` is `outputs x cols` row-major, `bias` is empty or
 * `outputs` long, `out` is `rows x outputs`. `activation`: 0 none, 1 sigmoid, 2 softmax (over
 * each row's outputs). `out` must not overlap the inputs.
 */
export declare function gemv(x: Float32Array, rows: number, cols: number, w: Float32Array, outputs: number, bias: Float32Array, activation: number, out: Float32Array): void

/** Scalar reference of [`gemv`] (same arguments). */
export declare function gemvScalar(x: Float32Array, rows: number, cols: number, w: Float32Array, outputs: number, bias: Float32Array, activation: number, out: Float32Array): void

/**
 * Writes the inverse of the symmetric positive-definite `a` (d*d, row-major) into `out` (d*d)
 * by Cholesky and returns true; returns false and leaves `out` untouched when `a` is not
 * symmetric (beyond rounding, 1e-9 relative) or not positive definite. A non-finite `a` throws.
 */
export declare function invertSpd(a: Float64Array, out: Float64Array): boolean

/**
 * Per row r and arm k of a linear bandit: `means[r*K + k] = x_r . (A_k^-1 b_k)` and
 * `widths[r*K + k] = sqrt(max(0, x_r' A_k^-1 x_r))`. `aInv` is K*d*d (symmetric per arm,
 * row-major), `b` K*d, `x` rows*d (FP32), `means` and `widths` rows*K; K = means.length / rows
 * and d = b.length / K. SIMD when available.
 */
export declare function linearArmStats(aInv: Float64Array, b: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void

/** Scalar reference of [`linear_arm_stats`] (same arguments), for tests and benchmarks. */
export declare function linearArmStatsScalar(aInv: Float64Array, b: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void

/**
 * Copies a linear/logistic model's weights (`outputs x cols`, row-major) and bias (empty or
 * `outputs`) into native memory on this thread and returns its handle for [`linear_run`].
 */
export declare function linearCreate(w: Float32Array, bias: Float32Array, cols: number, outputs: number, activation: number): number

/**
 * Shares the weights of `handle` (live on this thread) with the other threads of the process:
 * returns a token that [`linear_import`] accepts on any thread until [`linear_forget`]. The
 * weights are not copied; each call makes a new token. Throws ERR_NATIVE_INVALID_ARGUMENT if
 * the handle is not live on this thread.
 */
export declare function linearExport(handle: number): number

/**
 * Drops the export table's reference of `token`, so it can no longer be imported; false if it
 * was unknown. Handles already imported keep the weights alive until they are released.
 */
export declare function linearForget(token: number): boolean

/**
 * Gives the calling thread its own handle (for [`linear_run`], freed by [`linear_release`])
 * onto the weights exported under `token`, without copying them. `cols`, `outputs` and, when
 * given, `activation` must be the model's (a description that does not fit the model is
 * refused with ERR_NATIVE_SHAPE_MISMATCH); a token never issued or already forgotten throws
 * ERR_NATIVE_UNKNOWN_TOKEN.
 */
export declare function linearImport(token: number, cols: number, outputs: number, activation?: number | undefined | null): number

/**
 * Frees this thread's handle from [`linear_create`] or [`linear_import`]; false if the handle
 * was not live. The weights are freed with the last handle (on any thread) and token that
 * refer to them.
 */
export declare function linearRelease(handle: number): boolean

/**
 * Runs a model created by [`linear_create`] (or imported by [`linear_import`]) on `rows` rows
 * of `x` (rows x cols) into `out` (rows x outputs). Returns a status instead of throwing, because this is the per-request
 * call and a napi-rs `Result` costs measurable time: 0 ok, 1 unknown handle (or another
 * thread's), 2 bad rows, 3 wrong `x` length, 4 wrong `out` length, 5 `out` overlaps `x`.
 * The wrapper in src/native.ts turns non-zero statuses into coded errors.
 */
export declare function linearRun(handle: number, x: Float32Array, rows: number, out: Float32Array): number

/**
 * Writes the serving form of a linear bandit's state into `out`: per arm, A^-1 b, A^-1's diagonal
 * and its upper triangle in f32 (bandit/serving_form.rs), what `linearServingStats` reads. `aInv` is K*d*d
 * (symmetric per arm), `b` K*d, `out` linearServingFormLength(K, d); d = aInv.length /
 * b.length. A non-finite state throws (a published state never is).
 */
export declare function linearServingForm(aInv: Float64Array, b: Float64Array, out: Float64Array): void

/** f64 values of a linear bandit's serving form (`linearServingForm`) for K arms of d features. */
export declare function linearServingFormLength(arms: number, d: number): number

/**
 * `linearArmStats` from a serving form (`linearServingForm`): the same means up to rounding,
 * widths to f32 rounding, reading under a third of the bytes. `form` is linearServingFormLength(K, d), `x` rows*d (FP32),
 * `means` and `widths` rows*K. SIMD when available.
 */
export declare function linearServingStats(form: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void

/** Scalar reference of [`linear_serving_stats`] (same arguments), for tests and benchmarks. */
export declare function linearServingStatsScalar(form: Float64Array, x: Float32Array, rows: number, means: Float64Array, widths: Float64Array): void

/**
 * How many exported linear models are still alive in the process (held by some thread's handle
 * or by a token). A debug figure: tests check with it that releasing every handle frees them.
 */
export declare function linearSharedLive(): number

/**
 * Applies a batch of n events to a LinUCB state in order: for event i, arm k = arms[i],
 * Sherman-Morrison on `aInv`'s A_k^-1 with x_i (row i of `x`, FP32), `a`'s A_k += x_i x_i', and
 * `b`'s b_k += rewards[i] x_i. `aInv` and `a` are K*d*d, `b` K*d, `arms` n, `x` n*d, `rewards` n.
 * Returns how many events were applied: an event whose update is singular or would write a
 * non-finite value is skipped, on all three arrays. An arm out of range, a non-finite x or
 * reward, or a size that does not fit refuses the whole batch before anything changes.
 */
export declare function linucbLearn(aInv: Float64Array, a: Float64Array, b: Float64Array, arms: Uint32Array, x: Float32Array, rewards: Float64Array): number

/**
 * LinUCB scores for K arms: `out[k] = theta_k . x + alpha * sqrt(x' A_k^-1 x)` with
 * `theta_k = A_k^-1 b_k`. `aInv` is K*d*d (row-major, symmetric), `b` K*d, `x` d, `out` K.
 */
export declare function linucbScores(aInv: Float64Array, b: Float64Array, x: Float64Array, alpha: number, out: Float64Array): void

/**
 * Creates a nonblocking TCP socket with SO_REUSEADDR and SO_REUSEPORT, bound to `host:port`
 * (an IPv4 or IPv6 literal; port 0 lets the kernel choose) and listening with `backlog` (0:
 * 511). Further calls with the port returned join the same group, and the kernel spreads
 * connections over the group. The caller owns the descriptor: hand it to
 * `net.Server.listen({ fd })` (which closes it on `close()`) or to [`close_reuse_port`].
 * OS refusals (address in use...) throw ERR_NATIVE_SOCKET.
 */
export declare function listenReusePort(host: string, port: number, backlog: number): ReusePortSocket

/**
 * Sets the calling thread's nice value to `nice` (0..=19: lowering only, which needs no
 * privilege). Returns false where that is not supported or was refused.
 */
export declare function lowerCurrentThreadPriority(nice: number): boolean

/**
 * Binds a SO_REUSEPORT socket to `host:port` without listening: it holds the port (port 0:
 * the kernel's choice) while servers that open their own SO_REUSEPORT sockets (uWebSockets.js
 * given a nonzero port) start on it, and takes no connections. Close it with
 * [`close_reuse_port`] once they listen.
 */
export declare function reserveReusePort(host: string, port: number): ReusePortSocket

/**
 * A TCP socket made by [`listen_reuse_port`] or [`reserve_reuse_port`]: its descriptor and
 * bound port.
 */
export interface ReusePortSocket {
  fd: number
  port: number
}

/**
 * Finds the number arrays at `inputs[*].data` of a JSON inference request (see
 * `json_numbers.rs`) and parses them into `values`; writes (start, end, first value, count) per
 * array into `spans`. Returns how many, -1 when the body must go to JSON.parse alone, -2 when
 * `spans` or `values` is too small. Never fails otherwise: any doubt is -1. `layout` receives
 * the request's plain-form layout (`layout[0] = 1`) when it has one.
 */
export declare function scanJsonNumberArrays(body: Uint8Array, minElements: number, spans: Uint32Array, values: Float64Array, layout: Uint32Array): number

/**
 * Sherman-Morrison update of one arm's state in place after reward `reward` for context `x`:
 * `aInv` (d*d) becomes (A + x x')^-1 and `b` (d) becomes b + reward * x. Returns false and
 * leaves both unchanged if the update is numerically singular.
 */
export declare function shermanMorrisonUpdate(aInv: Float64Array, b: Float64Array, x: Float64Array, reward: number): boolean

/** The instruction set the dispatching kernels use: `"avx2+fma"` or `"scalar"`. */
export declare function simdLevel(): string
