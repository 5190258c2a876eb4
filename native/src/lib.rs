//! Sluice native core, exposed to Node.js through napi-rs.
//!
//! Flat API: typed arrays in, typed arrays (or numbers) out, synchronous. Every argument is
//! checked before any kernel runs, so bad input becomes a JS `Error` with a stable `code`
//! (see `errors.rs`) and never a panic or an out-of-bounds access. Functions also run under
//! `catch_unwind` as a second line of defence.

#![deny(clippy::all)]

mod bandit;
pub mod bandit_api;
mod errors;
mod json_numbers;
mod kernels;
mod linear_registry;
mod reuseport;
mod thread_clock;
mod thread_priority;

use bandit::{linucb, rng::Xoshiro256, sampling, thompson};
use bandit_api::{check_each, check_thompson};
use errors::{dim, disjoint, expect_len, finite, invalid, Code};
type Result<T> = napi::Result<T, Code>;
use kernels::{Activation, GemvShape};
use napi::bindgen_prelude::{Float32ArraySlice, Float64ArraySlice, Uint16ArraySlice, Uint32ArraySlice, Uint8ArraySlice};
use napi_derive::napi;

/// The instruction set the dispatching kernels use: `"avx2+fma"` or `"scalar"`.
#[napi(catch_unwind)]
pub fn simd_level() -> String {
  kernels::simd_level().name().to_string()
}

fn check_dot(a: &[f32], b: &[f32]) -> Result<()> {
  expect_len("b", b.len(), a.len())
}

/// Dot product of two Float32Arrays of equal length (SIMD when available).
#[napi(catch_unwind)]
pub fn dot(a: Float32ArraySlice, b: Float32ArraySlice) -> Result<f64> {
  check_dot(&a, &b)?;
  Ok(kernels::dot(&a, &b) as f64)
}

/// Scalar reference dot product (sequential f32 accumulation).
#[napi(catch_unwind)]
pub fn dot_scalar(a: Float32ArraySlice, b: Float32ArraySlice) -> Result<f64> {
  check_dot(&a, &b)?;
  Ok(kernels::scalar::dot(&a, &b) as f64)
}

/// Checks every GEMV argument; returns the shape and activation.
#[allow(clippy::too_many_arguments)]
fn check_gemv(
  x: &[f32],
  rows: f64,
  cols: f64,
  w: &[f32],
  outputs: f64,
  bias: &[f32],
  activation: u32,
  out: &[f32],
) -> Result<(GemvShape, Activation)> {
  let s = GemvShape { rows: dim("rows", rows)?, cols: dim("cols", cols)?, outputs: dim("outputs", outputs)? };
  let act = Activation::from_u32(activation)
    .ok_or_else(|| invalid(format!("activation must be 0 (none), 1 (sigmoid) or 2 (softmax), got {activation}")))?;
  let xlen = s.rows.checked_mul(s.cols).ok_or_else(|| invalid("rows * cols overflows"))?;
  let wlen = s.outputs.checked_mul(s.cols).ok_or_else(|| invalid("outputs * cols overflows"))?;
  let olen = s.rows.checked_mul(s.outputs).ok_or_else(|| invalid("rows * outputs overflows"))?;
  expect_len("x", x.len(), xlen)?;
  expect_len("w", w.len(), wlen)?;
  if !bias.is_empty() {
    expect_len("bias", bias.len(), s.outputs)?;
  }
  expect_len("out", out.len(), olen)?;
  disjoint("out", out, "x", x)?;
  disjoint("out", out, "w", w)?;
  disjoint("out", out, "bias", bias)?;
  Ok((s, act))
}

/// Batched GEMV: `out[r*outputs + o] = act(dot(x[r, :], w[o, :]) + bias[o])`.
///
/// `x` is `rows x cols` row-major, `w` is `outputs x cols` row-major, `bias` is empty or
/// `outputs` long, `out` is `rows x outputs`. `activation`: 0 none, 1 sigmoid, 2 softmax (over
/// each row's outputs). `out` must not overlap the inputs.
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn gemv(
  x: Float32ArraySlice,
  rows: f64,
  cols: f64,
  w: Float32ArraySlice,
  outputs: f64,
  bias: Float32ArraySlice,
  activation: u32,
  mut out: Float32ArraySlice,
) -> Result<()> {
  let (s, act) = check_gemv(&x, rows, cols, &w, outputs, &bias, activation, &out)?;
  // SAFETY: `out` was checked not to overlap any input, and no other Rust reference to its memory
  // exists during this call. The caller owns the buffer for the call's duration (JS is
  // single-threaded per isolate; shared arena slots are owned by one batch at a time).
  let out = unsafe { out.as_mut() };
  kernels::gemv(&x, &w, &bias, s, act, out);
  Ok(())
}

/// Scalar reference of [`gemv`] (same arguments).
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn gemv_scalar(
  x: Float32ArraySlice,
  rows: f64,
  cols: f64,
  w: Float32ArraySlice,
  outputs: f64,
  bias: Float32ArraySlice,
  activation: u32,
  mut out: Float32ArraySlice,
) -> Result<()> {
  let (s, act) = check_gemv(&x, rows, cols, &w, outputs, &bias, activation, &out)?;
  // SAFETY: as in `gemv`.
  let out = unsafe { out.as_mut() };
  kernels::gemv_scalar(&x, &w, &bias, s, act, out);
  Ok(())
}

/// `-1` when every element is finite, else the index of the first NaN or infinity.
fn index_or_minus_one(found: Option<usize>) -> f64 {
  found.map_or(-1.0, |i| i as f64)
}

/// Index of the first NaN or infinite element of a Float32Array, or -1 (SIMD when available).
/// Per-request call on binary tensors: it returns a number and never throws.
#[napi]
pub fn first_non_finite_f32(x: Float32ArraySlice) -> f64 {
  index_or_minus_one(kernels::finite::first_non_finite_f32(&x))
}

/// Index of the first NaN or infinite element of a Float64Array, or -1 (SIMD when available).
#[napi]
pub fn first_non_finite_f64(x: Float64ArraySlice) -> f64 {
  index_or_minus_one(kernels::finite::first_non_finite_f64(&x))
}

/// Index of the first NaN or infinite IEEE half (raw 16-bit patterns: exponent bits all ones)
/// in a Uint16Array, or -1 (SIMD when available).
#[napi]
pub fn first_non_finite_f16(x: Uint16ArraySlice) -> f64 {
  index_or_minus_one(kernels::finite::first_non_finite_f16(&x))
}

/// Scalar reference of the finite checks: `kind` 0 FP32, 1 FP64, 2 FP16 over the array's raw
/// little-endian bytes (whole elements only). For tests and benchmarks.
#[napi(catch_unwind)]
pub fn first_non_finite_scalar(bytes: Uint8ArraySlice, kind: u32) -> Result<f64> {
  use kernels::finite::scalar;
  let size = match kind {
    0 => 4,
    1 => 8,
    2 => 2,
    _ => return Err(invalid(format!("kind must be 0 (FP32), 1 (FP64) or 2 (FP16), got {kind}"))),
  };
  if !bytes.len().is_multiple_of(size) {
    return Err(invalid(format!("{} bytes are not whole elements of {size} bytes", bytes.len())));
  }
  // Decoded element by element (the bytes need not be aligned): bit patterns are kept as is.
  let words = bytes.chunks_exact(size);
  let found = match kind {
    0 => scalar::first_non_finite_f32(&words.map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>()),
    1 => scalar::first_non_finite_f64(&words.map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>()),
    _ => scalar::first_non_finite_f16(&words.map(|c| u16::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>()),
  };
  Ok(index_or_minus_one(found))
}

fn seed_from(seed: f64) -> Result<u64> {
  if !seed.is_finite() || seed < 0.0 || seed.fract() != 0.0 || seed > 9_007_199_254_740_991.0 {
    return Err(invalid(format!("seed must be an integer in [0, 2^53), got {seed}")));
  }
  Ok(seed as u64)
}

fn positive(name: &str, v: f64) -> Result<f64> {
  if !(v.is_finite() && v > 0.0) {
    return Err(invalid(format!("{name} must be a finite number > 0, got {v}")));
  }
  Ok(v)
}

/// Seeded pseudo-random generator (xoshiro256++) with the bandit samplers. The same seed gives
/// the same sequence on every machine.
#[napi]
pub struct Rng {
  inner: Xoshiro256,
}

#[napi]
impl Rng {
  /// `seed`: an integer in [0, 2^53).
  #[napi(constructor, catch_unwind)]
  pub fn new(seed: f64) -> Result<Self> {
    Ok(Rng { inner: Xoshiro256::new(seed_from(seed)?) })
  }

  /// Uniform in [0, 1).
  #[napi(catch_unwind)]
  pub fn next_f64(&mut self) -> f64 {
    self.inner.next_f64()
  }

  /// Standard normal sample.
  #[napi(catch_unwind)]
  pub fn normal(&mut self) -> f64 {
    sampling::normal(&mut self.inner)
  }

  /// Gamma(shape, scale) sample (Marsaglia-Tsang). `scale` defaults to 1.
  #[napi(catch_unwind)]
  pub fn gamma(&mut self, shape: f64, scale: Option<f64>) -> Result<f64> {
    let shape = positive("shape", shape)?;
    let scale = positive("scale", scale.unwrap_or(1.0))?;
    Ok(sampling::gamma(&mut self.inner, shape, scale))
  }

  /// Beta(a, b) sample.
  #[napi(catch_unwind)]
  pub fn beta(&mut self, a: f64, b: f64) -> Result<f64> {
    let (a, b) = (positive("a", a)?, positive("b", b)?);
    Ok(sampling::beta(&mut self.inner, a, b))
  }

  /// Fills `out` with Gamma(shape, scale) samples.
  #[napi(catch_unwind)]
  pub fn fill_gamma(&mut self, shape: f64, scale: f64, mut out: Float64ArraySlice) -> Result<()> {
    let shape = positive("shape", shape)?;
    let scale = positive("scale", scale)?;
    // SAFETY: the only Rust view of `out` during this call.
    for v in unsafe { out.as_mut() } {
      *v = sampling::gamma(&mut self.inner, shape, scale);
    }
    Ok(())
  }

  /// Fills `out` with Beta(a, b) samples.
  #[napi(catch_unwind)]
  pub fn fill_beta(&mut self, a: f64, b: f64, mut out: Float64ArraySlice) -> Result<()> {
    let (a, b) = (positive("a", a)?, positive("b", b)?);
    // SAFETY: the only Rust view of `out` during this call.
    for v in unsafe { out.as_mut() } {
      *v = sampling::beta(&mut self.inner, a, b);
    }
    Ok(())
  }

  /// Thompson sampling over K Beta(alpha_k, beta_k) arms: returns the arm with the largest
  /// sample. When `samples` (K long) is given, the drawn samples are written to it.
  #[napi(catch_unwind)]
  pub fn thompson_select(
    &mut self,
    alphas: Float64ArraySlice,
    betas: Float64ArraySlice,
    samples: Option<Float64ArraySlice>,
  ) -> Result<u32> {
    if alphas.is_empty() {
      return Err(invalid("alphas must hold at least one arm"));
    }
    expect_len("betas", betas.len(), alphas.len())?;
    for k in 0..alphas.len() {
      positive("alphas[k]", alphas[k])?;
      positive("betas[k]", betas[k])?;
    }
    let mut samples = samples;
    if let Some(s) = samples.as_ref() {
      expect_len("samples", s.len(), alphas.len())?;
      disjoint("samples", s, "alphas", &alphas)?;
      disjoint("samples", s, "betas", &betas)?;
    }
    // SAFETY: `samples` was checked not to overlap the inputs; it is the only mutable view.
    let out = samples.as_mut().map(|s| unsafe { s.as_mut() });
    Ok(sampling::thompson_select(&mut self.inner, &alphas, &betas, out) as u32)
  }

  /// Thompson sampling over K Normal(means[k], sds[k]^2) posteriors: draws one sample per arm
  /// and returns the arm with the largest (ties to the lowest index). `sds[k]` = 0 is a point
  /// mass. When `probs` (K) is given and `draws` > 0, also estimates each arm's probability of
  /// being picked from `draws` further independent rounds and writes it to `probs` (sum 1);
  /// with `draws` = 0 `probs` is left as it is.
  #[napi(catch_unwind)]
  pub fn thompson_normal(
    &mut self,
    means: Float64ArraySlice,
    sds: Float64ArraySlice,
    draws: f64,
    mut probs: Option<Float64ArraySlice>,
  ) -> Result<u32> {
    let draws = check_thompson(["means", "sds"], &means, &sds, draws, probs.as_deref())?;
    check_each("means", &means, "a finite number", f64::is_finite)?;
    check_each("sds", &sds, "a finite number >= 0", |v| v.is_finite() && v >= 0.0)?;
    // SAFETY: `probs` was checked not to overlap the inputs; it is the only mutable view.
    let out = probs.as_mut().map(|p| unsafe { p.as_mut() });
    Ok(thompson::thompson_normal(&mut self.inner, &means, &sds, draws, out) as u32)
  }

  /// Thompson sampling over K Beta(alphas[k], betas[k]) posteriors, with the contract of
  /// [`Rng::thompson_normal`] (parameters finite and > 0).
  #[napi(catch_unwind)]
  pub fn thompson_beta(
    &mut self,
    alphas: Float64ArraySlice,
    betas: Float64ArraySlice,
    draws: f64,
    mut probs: Option<Float64ArraySlice>,
  ) -> Result<u32> {
    let draws = check_thompson(["alphas", "betas"], &alphas, &betas, draws, probs.as_deref())?;
    check_each("alphas", &alphas, "a finite number > 0", |v| v.is_finite() && v > 0.0)?;
    check_each("betas", &betas, "a finite number > 0", |v| v.is_finite() && v > 0.0)?;
    // SAFETY: as in `thompson_normal`.
    let out = probs.as_mut().map(|p| unsafe { p.as_mut() });
    Ok(thompson::thompson_beta(&mut self.inner, &alphas, &betas, draws, out) as u32)
  }
}

/// Infers d from `x` and K from `out`, and checks the LinUCB state sizes.
fn check_linucb_state(a_inv: &[f64], b: &[f64], x: &[f64], k: usize) -> Result<usize> {
  let d = x.len();
  if d == 0 || k == 0 {
    return Err(invalid("LinUCB needs d >= 1 features and K >= 1 arms"));
  }
  expect_len("aInv", a_inv.len(), k * d * d)?;
  expect_len("b", b.len(), k * d)?;
  for v in x {
    finite("x[i]", *v)?;
  }
  Ok(d)
}

/// LinUCB scores for K arms: `out[k] = theta_k . x + alpha * sqrt(x' A_k^-1 x)` with
/// `theta_k = A_k^-1 b_k`. `aInv` is K*d*d (row-major, symmetric), `b` K*d, `x` d, `out` K.
#[napi(catch_unwind)]
pub fn linucb_scores(
  a_inv: Float64ArraySlice,
  b: Float64ArraySlice,
  x: Float64ArraySlice,
  alpha: f64,
  mut out: Float64ArraySlice,
) -> Result<()> {
  let d = check_linucb_state(&a_inv, &b, &x, out.len())?;
  let alpha = finite("alpha", alpha)?;
  disjoint("out", &out, "aInv", &a_inv)?;
  disjoint("out", &out, "b", &b)?;
  disjoint("out", &out, "x", &x)?;
  let mut scratch = vec![0.0; d];
  // SAFETY: `out` does not overlap any input and is the only mutable view.
  linucb::scores(&a_inv, &b, &x, alpha, unsafe { out.as_mut() }, &mut scratch);
  Ok(())
}

/// Sherman-Morrison update of one arm's state in place after reward `reward` for context `x`:
/// `aInv` (d*d) becomes (A + x x')^-1 and `b` (d) becomes b + reward * x. Returns false and
/// leaves both unchanged if the update is numerically singular.
#[napi(catch_unwind)]
pub fn sherman_morrison_update(
  mut a_inv: Float64ArraySlice,
  mut b: Float64ArraySlice,
  x: Float64ArraySlice,
  reward: f64,
) -> Result<bool> {
  let d = check_linucb_state(&a_inv, &b, &x, 1)?;
  let reward = finite("reward", reward)?;
  disjoint("aInv", &a_inv, "b", &b)?;
  disjoint("aInv", &a_inv, "x", &x)?;
  disjoint("b", &b, "x", &x)?;
  let mut scratch = vec![0.0; d];
  // SAFETY: `aInv`, `b` and `x` were checked pairwise disjoint; these are the only mutable views.
  let (ai, bm) = unsafe { (a_inv.as_mut(), b.as_mut()) };
  Ok(linucb::sherman_morrison(ai, bm, &x, reward, &mut scratch))
}

/// Copies a linear/logistic model's weights (`outputs x cols`, row-major) and bias (empty or
/// `outputs`) into native memory on this thread and returns its handle for [`linear_run`].
#[napi(catch_unwind)]
pub fn linear_create(w: Float32ArraySlice, bias: Float32ArraySlice, cols: f64, outputs: f64, activation: u32) -> Result<u32> {
  let cols = dim("cols", cols)?;
  let outputs = dim("outputs", outputs)?;
  if cols == 0 || outputs == 0 {
    return Err(invalid("cols and outputs must be at least 1"));
  }
  let act = Activation::from_u32(activation).ok_or_else(|| invalid(format!("unknown activation {activation}")))?;
  expect_len("w", w.len(), cols.checked_mul(outputs).ok_or_else(|| invalid("cols * outputs overflows"))?)?;
  if !bias.is_empty() {
    expect_len("bias", bias.len(), outputs)?;
  }
  Ok(linear_registry::insert(linear_registry::LinearModel::new(w.to_vec(), bias.to_vec(), cols, outputs, act)))
}

/// Runs a model created by [`linear_create`] (or imported by [`linear_import`]) on `rows` rows
/// of `x` (rows x cols) into `out` (rows x outputs). Returns a status instead of throwing, because this is the per-request
/// call and a napi-rs `Result` costs measurable time: 0 ok, 1 unknown handle (or another
/// thread's), 2 bad rows, 3 wrong `x` length, 4 wrong `out` length, 5 `out` overlaps `x`.
/// The wrapper in src/native.ts turns non-zero statuses into coded errors.
#[napi]
pub fn linear_run(handle: u32, x: Float32ArraySlice, rows: f64, mut out: Float32ArraySlice) -> u32 {
  if disjoint("out", &out, "x", &x).is_err() {
    return linear_registry::ALIASED;
  }
  // SAFETY: `out` does not overlap `x` (checked above) and is the only mutable view of it.
  let out = unsafe { out.as_mut() };
  // A panic here would be a bug in the checks; contain it rather than abort the process.
  std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| linear_registry::run(handle, &x, rows, out)))
    .unwrap_or(u32::MAX)
}

/// Frees this thread's handle from [`linear_create`] or [`linear_import`]; false if the handle
/// was not live. The weights are freed with the last handle (on any thread) and token that
/// refer to them.
#[napi(catch_unwind)]
pub fn linear_release(handle: u32) -> bool {
  linear_registry::remove(handle)
}

/// A token as JS passes it: an integer in [1, 2^32), else None.
fn token_from(token: f64) -> Option<u32> {
  (token.is_finite() && token >= 1.0 && token.fract() == 0.0 && token <= u32::MAX as f64).then_some(token as u32)
}

/// Shares the weights of `handle` (live on this thread) with the other threads of the process:
/// returns a token that [`linear_import`] accepts on any thread until [`linear_forget`]. The
/// weights are not copied; each call makes a new token. Throws ERR_NATIVE_INVALID_ARGUMENT if
/// the handle is not live on this thread.
#[napi(catch_unwind)]
pub fn linear_export(handle: u32) -> Result<u32> {
  linear_registry::export(handle)
    .ok_or_else(|| invalid(format!("linear model handle {handle} is not live on this thread (released, or created on another thread)")))
}

/// Gives the calling thread its own handle (for [`linear_run`], freed by [`linear_release`])
/// onto the weights exported under `token`, without copying them. `cols`, `outputs` and, when
/// given, `activation` must be the model's (a description that does not fit the model is
/// refused with ERR_NATIVE_SHAPE_MISMATCH); a token never issued or already forgotten throws
/// ERR_NATIVE_UNKNOWN_TOKEN.
#[napi(catch_unwind)]
pub fn linear_import(token: f64, cols: f64, outputs: f64, activation: Option<u32>) -> Result<u32> {
  let cols = dim("cols", cols)?;
  let outputs = dim("outputs", outputs)?;
  let act = activation
    .map(|a| Activation::from_u32(a).ok_or_else(|| invalid(format!("unknown activation {a}"))))
    .transpose()?;
  let unknown = || napi::Error::new(Code::UnknownToken, format!("shared linear model token {token} is unknown (never issued, or forgotten)"));
  let t = token_from(token).ok_or_else(unknown)?;
  linear_registry::import(t, cols, outputs, act).map_err(|e| match e {
    linear_registry::ImportError::UnknownToken => unknown(),
    linear_registry::ImportError::Mismatch { cols: c, outputs: o, act: a } => errors::shape(format!(
      "shared linear model {t} is {o} outputs x {c} features with activation {}, expected {outputs} x {cols}{}",
      a as u32,
      activation.map_or(String::new(), |e| format!(" with activation {e}"))
    )),
  })
}

/// Drops the export table's reference of `token`, so it can no longer be imported; false if it
/// was unknown. Handles already imported keep the weights alive until they are released.
#[napi(catch_unwind)]
pub fn linear_forget(token: f64) -> bool {
  token_from(token).is_some_and(linear_registry::forget)
}

/// How many exported linear models are still alive in the process (held by some thread's handle
/// or by a token). A debug figure: tests check with it that releasing every handle frees them.
#[napi(catch_unwind)]
pub fn linear_shared_live() -> u32 {
  linear_registry::shared_live() as u32
}

/// Finds the number arrays at `inputs[*].data` of a JSON inference request (see
/// `json_numbers.rs`) and parses them into `values`; writes (start, end, first value, count) per
/// array into `spans`. Returns how many, -1 when the body must go to JSON.parse alone, -2 when
/// `spans` or `values` is too small. Never fails otherwise: any doubt is -1. `layout` receives
/// the request's plain-form layout (`layout[0] = 1`) when it has one.
#[napi(catch_unwind)]
pub fn scan_json_number_arrays(body: Uint8ArraySlice, min_elements: u32, mut spans: Uint32ArraySlice, mut values: Float64ArraySlice, mut layout: Uint32ArraySlice) -> i64 {
  // SAFETY: `spans`, `values` and `layout` are distinct JS typed arrays the caller owns for this
  // call (single-threaded); `body` is only read.
  let (spans, values, layout) = unsafe { (spans.as_mut(), values.as_mut(), layout.as_mut()) };
  json_numbers::scan(&body, min_elements as usize, spans, values, layout)
}

/// A TCP socket made by [`listen_reuse_port`] or [`reserve_reuse_port`]: its descriptor and
/// bound port.
#[napi(object)]
pub struct ReusePortSocket {
  pub fd: i32,
  pub port: u32,
}

fn from_fault(f: reuseport::Fault) -> napi::Error<Code> {
  napi::Error::new(f.code, f.reason)
}

fn to_js(l: reuseport::Listener) -> ReusePortSocket {
  ReusePortSocket { fd: l.fd, port: u32::from(l.port) }
}

/// Creates a nonblocking TCP socket with SO_REUSEADDR and SO_REUSEPORT, bound to `host:port`
/// (an IPv4 or IPv6 literal; port 0 lets the kernel choose) and listening with `backlog` (0:
/// 511). Further calls with the port returned join the same group, and the kernel spreads
/// connections over the group. The caller owns the descriptor: hand it to
/// `net.Server.listen({ fd })` (which closes it on `close()`) or to [`close_reuse_port`].
/// OS refusals (address in use...) throw ERR_NATIVE_SOCKET.
#[napi(catch_unwind)]
pub fn listen_reuse_port(host: String, port: f64, backlog: f64) -> Result<ReusePortSocket> {
  reuseport::parse_address(&host, port).and_then(|a| reuseport::listen(a, backlog)).map(to_js).map_err(from_fault)
}

/// Binds a SO_REUSEPORT socket to `host:port` without listening: it holds the port (port 0:
/// the kernel's choice) while servers that open their own SO_REUSEPORT sockets (uWebSockets.js
/// given a nonzero port) start on it, and takes no connections. Close it with
/// [`close_reuse_port`] once they listen.
#[napi(catch_unwind)]
pub fn reserve_reuse_port(host: String, port: f64) -> Result<ReusePortSocket> {
  reuseport::parse_address(&host, port).and_then(reuseport::reserve).map(to_js).map_err(from_fault)
}

/// Closes a socket from [`listen_reuse_port`] or [`reserve_reuse_port`] that was never handed
/// to Node. A descriptor that is not a SO_REUSEPORT socket without a peer is refused
/// (ERR_NATIVE_INVALID_ARGUMENT) and left open.
#[napi(catch_unwind)]
pub fn close_reuse_port(fd: f64) -> Result<()> {
  reuseport::close(fd).map_err(from_fault)
}
