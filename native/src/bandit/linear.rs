//! Linear-bandit state kernels over K arms, each with a symmetric d x d A_k^-1 (and, for the
//! learner, the additive A_k) and b_k, all f64 row-major, arms concatenated. Contexts are FP32 rows.
//!
//! - `arm_stats`: per row and arm, mean = x . (A^-1 b) and width = sqrt(x' A^-1 x), the two
//!   numbers LinUCB, linear Thompson sampling and epsilon-greedy score with (request path).
//! - `learn`: a batch of (arm, x, reward) events by Sherman-Morrison (learner).
//!
//! Both lean on A^-1 being symmetric: A^-1 x = sum_j x_j * row_j(A^-1), an axpy over rows that
//! vectorises without reordering any sum (and, for stats, b . (A^-1 x) = (A^-1 b) . x).

use std::cell::RefCell;

use crate::kernels::{simd_level, SimdLevel};

/// Sizes of a linear-bandit state and a batch of context rows.
#[derive(Debug, Clone, Copy)]
pub struct ArmShape {
  pub arms: usize,
  pub d: usize,
}

/// Writes `means[r*K + k]` and `widths[r*K + k]` for every row of `x` (rows x d) and arm, on the
/// best available instruction set. Lengths must already be checked by the caller.
pub fn arm_stats(a_inv: &[f64], b: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64]) {
  match simd_level() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: Avx2Fma is only selected after CPUID reported both features.
    SimdLevel::Avx2Fma => unsafe { super::linear_avx2::arm_stats(a_inv, b, x, s, means, widths) },
    _ => arm_stats_scalar(a_inv, b, x, s, means, widths),
  }
}

/// The scalar reference of [`arm_stats`]: plain sequential sums, A^-1 x by rows.
pub fn arm_stats_scalar(a_inv: &[f64], b: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64]) {
  let ArmShape { arms, d } = s;
  let rows = x.len().checked_div(d).unwrap_or(0);
  for r in 0..rows {
    let xr = &x[r * d..(r + 1) * d];
    for k in 0..arms {
      let ai = &a_inv[k * d * d..(k + 1) * d * d];
      let bk = &b[k * d..(k + 1) * d];
      let mut mean = 0.0;
      let mut var = 0.0;
      for i in 0..d {
        let mut u = 0.0;
        for j in 0..d {
          u += ai[i * d + j] * xr[j] as f64;
        }
        mean += bk[i] * u;
        var += xr[i] as f64 * u;
      }
      means[r * arms + k] = mean;
      // Rounding can push a zero variance slightly negative; clamp before the square root.
      widths[r * arms + k] = var.max(0.0).sqrt();
    }
  }
}

/// A batch of learning events: event i is (arms[i], x row i, rewards[i]).
pub struct Events<'a> {
  pub arms: &'a [u32],
  pub x: &'a [f32],
  pub rewards: &'a [f64],
}

/// The learner's state of K arms (see the module comment).
pub struct LearnState<'a> {
  pub a_inv: &'a mut [f64],
  pub a: &'a mut [f64],
  pub b: &'a mut [f64],
}

thread_local! {
  /// Per-thread scratch for `learn` (x as f64 and A^-1 x) and `invert_spd` (the Cholesky factor
  /// and the inverse): grown once to the largest d seen, so batches allocate nothing after that.
  static SCRATCH: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
  SCRATCH.with(|cell| {
    let mut buf = cell.borrow_mut();
    if buf.len() < len {
      buf.resize(len, 0.0);
    }
    f(&mut buf[..len])
  })
}

/// Applies every event in order: Sherman-Morrison on A_k^-1, A_k += x x', b_k += r x. An event
/// whose update is singular (1 + x' A^-1 x not finite and positive) or would write a non-finite
/// value is skipped, on all three. Returns how many were applied. Arms, lengths and
/// finite-ness must already be checked by the caller.
pub fn learn(state: LearnState, ev: Events, d: usize) -> usize {
  with_scratch(2 * d, |scratch| {
    let (xd, u) = scratch.split_at_mut(d);
    match simd_level() {
      #[cfg(target_arch = "x86_64")]
      // SAFETY: Avx2Fma is only selected after CPUID reported both features.
      SimdLevel::Avx2Fma => unsafe { learn_avx2(state, ev, d, xd, u) },
      _ => learn_body::<false>(state, ev, d, xd, u),
    }
  })
}

/// [`learn`] without SIMD whatever the CPU: the reference the SIMD build is tested against.
#[cfg(test)]
pub fn learn_scalar(state: LearnState, ev: Events, d: usize) -> usize {
  with_scratch(2 * d, |scratch| {
    let (xd, u) = scratch.split_at_mut(d);
    learn_body::<false>(state, ev, d, xd, u)
  })
}

/// The same source compiled with AVX2+FMA enabled, so its element-wise loops become 4-wide FMAs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn learn_avx2(state: LearnState, ev: Events, d: usize, xd: &mut [f64], u: &mut [f64]) -> usize {
  learn_body::<true>(state, ev, d, xd, u)
}

/// `a * b + c`, fused when the build has FMA (`FMA`); unfused otherwise, where `mul_add` would
/// be a slow library call.
#[inline(always)]
fn madd<const FMA: bool>(a: f64, b: f64, c: f64) -> f64 {
  if FMA {
    a.mul_add(b, c)
  } else {
    a * b + c
  }
}

/// Dot product with four independent accumulators (chunks of 4), which the compiler maps onto
/// one vector register without reordering any single accumulator's sum.
#[inline(always)]
fn dot4<const FMA: bool>(a: &[f64], b: &[f64]) -> f64 {
  let mut acc = [0.0f64; 4];
  let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
  let (ra, rb) = (ca.remainder(), cb.remainder());
  for (pa, pb) in ca.zip(cb) {
    for l in 0..4 {
      acc[l] = madd::<FMA>(pa[l], pb[l], acc[l]);
    }
  }
  for (va, vb) in ra.iter().zip(rb) {
    acc[0] = madd::<FMA>(*va, *vb, acc[0]);
  }
  (acc[0] + acc[1]) + (acc[2] + acc[3])
}

/// `y += alpha * x`, element-wise (vectorises as is).
#[inline(always)]
fn axpy<const FMA: bool>(alpha: f64, x: &[f64], y: &mut [f64]) {
  for (yv, xv) in y.iter_mut().zip(x) {
    *yv = madd::<FMA>(alpha, *xv, *yv);
  }
}

#[inline(always)]
fn learn_body<const FMA: bool>(state: LearnState, ev: Events, d: usize, xd: &mut [f64], u: &mut [f64]) -> usize {
  let LearnState { a_inv, a, b } = state;
  let dd = d * d;
  let mut applied = 0;
  for (i, (&arm, &reward)) in ev.arms.iter().zip(ev.rewards).enumerate() {
    let k = arm as usize;
    for (dst, src) in xd.iter_mut().zip(&ev.x[i * d..(i + 1) * d]) {
      *dst = *src as f64;
    }
    let ai = &mut a_inv[k * dd..(k + 1) * dd];
    // u = A^-1 x, by rows because A^-1 is symmetric.
    u.fill(0.0);
    for (row, &xj) in ai.chunks_exact(d).zip(xd.iter()) {
      axpy::<FMA>(xj, row, u);
    }
    let denom = 1.0 + dot4::<FMA>(xd, u);
    // A non-finite u makes the denominator non-finite too (x is finite), so this also refuses a
    // state that is already broken.
    if !(denom.is_finite() && denom > 0.0) {
      continue;
    }
    // A^-1 -= u u' / denom, written as s s' with s = u / sqrt(denom): s_i s_j = s_j s_i exactly,
    // so A^-1 stays exactly symmetric however many updates it takes.
    let scale = 1.0 / denom.sqrt();
    let u_max = u.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let x_max = xd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if !((u_max * scale) * (u_max * scale)).is_finite() || !(reward.abs() * x_max).is_finite() {
      continue;
    }
    for v in u.iter_mut() {
      *v *= scale;
    }
    for (row, &si) in ai.chunks_exact_mut(d).zip(u.iter()) {
      axpy::<FMA>(-si, u, row);
    }
    for (row, &xi) in a[k * dd..(k + 1) * dd].chunks_exact_mut(d).zip(xd.iter()) {
      axpy::<FMA>(xi, xd, row);
    }
    axpy::<FMA>(reward, xd, &mut b[k * d..(k + 1) * d]);
    applied += 1;
  }
  applied
}

/// Relative asymmetry `invert_spd` tolerates (rounding of a matrix symmetric by construction).
const SYMMETRY_TOLERANCE: f64 = 1e-9;

/// Writes the inverse of the symmetric positive-definite `a` (d x d) into `out` by Cholesky
/// (A = L L', A^-1 = L^-T L^-1) and returns true. Returns false, leaving `out` untouched, when
/// `a` is not symmetric (beyond rounding), not positive definite, or its inverse is not finite.
/// `a` must be finite (checked by the caller).
pub fn invert_spd(a: &[f64], d: usize, out: &mut [f64]) -> bool {
  for i in 0..d {
    for j in 0..i {
      let (lo, up) = (a[i * d + j], a[j * d + i]);
      if (lo - up).abs() > SYMMETRY_TOLERANCE * lo.abs().max(up.abs()) {
        return false;
      }
    }
  }
  let dd = d * d;
  with_scratch(2 * dd, |scratch| {
    let (l, inv) = scratch.split_at_mut(dd);
    if !cholesky(a, d, l) {
      return false;
    }
    invert_lower(l, d);
    // A^-1 = M' M with M = L^-1 lower triangular: the sum over k of the outer product of M's
    // row k with itself (entries 0..=k), which fills both triangles with identical sums.
    inv.fill(0.0);
    for k in 0..d {
      let mk = &l[k * d..k * d + k + 1];
      for (i, &mki) in mk.iter().enumerate() {
        axpy::<false>(mki, mk, &mut inv[i * d..i * d + k + 1]);
      }
    }
    if inv.iter().any(|v| !v.is_finite()) {
      return false;
    }
    out.copy_from_slice(inv);
    true
  })
}

/// Lower Cholesky factor of `a` into `l` (row-major, upper part zero), from a's lower triangle;
/// false when a pivot is not positive (not positive definite) or not finite.
fn cholesky(a: &[f64], d: usize, l: &mut [f64]) -> bool {
  l.fill(0.0);
  for j in 0..d {
    let lj = &l[j * d..j * d + j];
    let pivot = a[j * d + j] - lj.iter().map(|v| v * v).sum::<f64>();
    if !(pivot.is_finite() && pivot > 0.0) {
      return false;
    }
    let ljj = pivot.sqrt();
    l[j * d + j] = ljj;
    for i in j + 1..d {
      let dot: f64 = l[i * d..i * d + j].iter().zip(&l[j * d..j * d + j]).map(|(p, q)| p * q).sum();
      l[i * d + j] = (a[i * d + j] - dot) / ljj;
    }
  }
  true
}

/// Replaces the lower-triangular `l` (positive diagonal) by its inverse, in place, column by
/// column: M_jj = 1 / L_jj and M_ij = -(sum_{j<=k<i} L_ik M_kj) / L_ii for i > j.
fn invert_lower(l: &mut [f64], d: usize) {
  for j in 0..d {
    l[j * d + j] = 1.0 / l[j * d + j];
    for i in j + 1..d {
      // Columns are done left to right and rows top down, so here l[k][j] (j <= k < i) holds
      // M_kj already, while l[i][k] (k >= j) and l[i][i] still hold L: M_ij is written last.
      let mut s = 0.0;
      for k in j..i {
        s += l[i * d + k] * l[k * d + j];
      }
      l[i * d + j] = -s / l[i * d + i];
    }
  }
}
