//! A linear bandit's state as the request path reads it: per arm, theta = A^-1 b, A^-1's
//! diagonal, and its upper triangle off the diagonal in f32, under a third of the bytes of A^-1
//! itself. A decision reads every arm's A^-1 once (x' A^-1 x, the width): 5 arms x 100 x 100 f64
//! is 400 KB per decision at demo-bandit's shape. Half of it as f64 (the triangle) made the
//! kernel bound by its chains of 4-wide FMAs (848 ns at d = 32, K = 10, where the form fits any
//! cache, against 3.3 µs at d = 100, K = 5: the same ~7 G multiply-adds a second). The triangle
//! in f32 takes 8-wide FMAs over half the bytes. Precision: each row's sum over the triangle is
//! an f32 dot product (d terms); the rows, the diagonal and theta . x are summed in f64, and the
//! answer's scores are FP32 anyway: the width agrees with the f64 state's to ~1e-6 relative
//! (tests.rs), the mean exactly as before. The form is built once per published state
//! (`build`), on each reading thread, and serves every decision until the next one.
//!
//! Per arm, `arm_len(d)` f64, with dp = d rounded up to a multiple of 4 and d8 = d rounded up to
//! a multiple of 8:
//!   theta  dp f64 (A^-1 b, zero-padded)
//!   diag   dp f64 (A^-1's diagonal, zero-padded)
//!   tri    f32, two to each f64 slot: for each i < d, columns start(i) .. d8 of row i, where
//!          start(i) = i rounded down to a multiple of 8: the entries right of the diagonal, zero
//!          at columns <= i and >= d, so that every row is whole 8-wide vectors and the 4 rows of
//!          a block (i a multiple of 4) start at the same column (the SIMD kernel reads each x
//!          vector once for all 4); the last slot's second half is zero when the count is odd.
//! Then x' A^-1 x = sum_i diag_i x_i^2 + 2 sum_i x_i sum_{j > i} A^-1_ij x_j.

use std::cell::RefCell;

use super::linear::ArmShape;
use crate::kernels::{simd_level, SimdLevel};

/// `d` rounded up to a multiple of 4.
pub fn padded(d: usize) -> usize {
  d.div_ceil(4) * 4
}

/// `d` rounded up to a multiple of 8: the width of the triangle's rows.
pub fn padded8(d: usize) -> usize {
  d.div_ceil(8) * 8
}

/// First stored column of row `i` of the triangle.
#[inline(always)]
fn start(i: usize) -> usize {
  i & !7
}

/// f32 values of one arm's triangle.
fn tri_len(d: usize) -> usize {
  let d8 = padded8(d);
  (0..d).map(|i| d8 - start(i)).sum()
}

/// f64 values per arm of the serving form for `d` context features.
pub fn arm_len(d: usize) -> usize {
  2 * padded(d) + tri_len(d).div_ceil(2)
}

/// An arm's triangle: the f32 values in its f64 slots after theta and the diagonal.
pub fn tri(arm: &[f64], dp: usize) -> &[f32] {
  let slots = &arm[2 * dp..];
  // SAFETY: f32 has half the size and no stricter alignment than f64; every bit pattern is a
  // valid f32; the view covers exactly the slots' bytes and lives no longer than `arm`.
  unsafe { std::slice::from_raw_parts(slots.as_ptr().cast::<f32>(), slots.len() * 2) }
}

fn tri_mut(arm: &mut [f64], dp: usize) -> &mut [f32] {
  let slots = &mut arm[2 * dp..];
  // SAFETY: as in `tri`, and the only view of these bytes while it lives.
  unsafe { std::slice::from_raw_parts_mut(slots.as_mut_ptr().cast::<f32>(), slots.len() * 2) }
}

/// Writes the serving form of K arms (`a_inv` K*d*d symmetric per arm, `b` K*d) into `out`
/// (K * arm_len(d)). Lengths must already be checked by the caller.
pub fn build(a_inv: &[f64], b: &[f64], s: ArmShape, out: &mut [f64]) {
  let ArmShape { arms, d } = s;
  let (dp, d8) = (padded(d), padded8(d));
  let per = arm_len(d);
  for k in 0..arms {
    let ai = &a_inv[k * d * d..(k + 1) * d * d];
    let bk = &b[k * d..(k + 1) * d];
    let o = &mut out[k * per..(k + 1) * per];
    o.fill(0.0);
    for i in 0..d {
      let row = &ai[i * d..(i + 1) * d];
      o[i] = row.iter().zip(bk).map(|(a, v)| a * v).sum();
      o[dp + i] = row[i];
    }
    let mut rows = tri_mut(o, dp);
    for i in 0..d {
      let row = &ai[i * d..(i + 1) * d];
      let (dst, tail) = rows.split_at_mut(d8 - start(i));
      for j in (i + 1)..d {
        dst[j - start(i)] = row[j] as f32;
      }
      rows = tail;
    }
  }
}

thread_local! {
  /// The context row as f64 (zero-padded to dp) and as f32 (zero-padded to d8): grown once to
  /// the largest d seen.
  static X: RefCell<(Vec<f64>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Per row r and arm k: `means[r*K + k] = x_r . theta_k`, `widths[r*K + k] = sqrt(max(0,
/// x_r' A_k^-1 x_r))`, from the serving form `form` (K * arm_len(d)). The same numbers as
/// `linear::arm_stats` up to rounding. Lengths must already be checked by the caller.
pub fn stats(form: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64]) {
  match simd_level() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: Avx2Fma is only selected after CPUID reported both features.
    SimdLevel::Avx2Fma => with_rows(form, x, s, means, widths, |f, xd, xf, d| unsafe { avx2::mean_var(f, xd, xf, d) }),
    _ => stats_scalar(form, x, s, means, widths),
  }
}

/// The scalar reference of [`stats`].
pub fn stats_scalar(form: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64]) {
  with_rows(form, x, s, means, widths, mean_var_scalar)
}

/// Runs `mean_var` over every row and arm, the row converted to padded f64 and f32 once.
fn with_rows(form: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64], mean_var: impl Fn(&[f64], &[f64], &[f32], usize) -> (f64, f64)) {
  let ArmShape { arms, d } = s;
  let (dp, d8) = (padded(d), padded8(d));
  let per = arm_len(d);
  let rows = x.len().checked_div(d).unwrap_or(0);
  X.with(|cell| {
    let (xd, xf) = &mut *cell.borrow_mut();
    if xd.len() < dp {
      xd.resize(dp, 0.0);
    }
    if xf.len() < d8 {
      xf.resize(d8, 0.0);
    }
    for r in 0..rows {
      let row = &x[r * d..(r + 1) * d];
      for (dst, src) in xd.iter_mut().zip(row) {
        *dst = *src as f64;
      }
      xd[d..dp].fill(0.0);
      xf[..d].copy_from_slice(row);
      xf[d..d8].fill(0.0);
      for k in 0..arms {
        let (mean, var) = mean_var(&form[k * per..(k + 1) * per], &xd[..dp], &xf[..d8], d);
        means[r * arms + k] = mean;
        // Rounding can push a zero variance slightly negative; clamp before the square root.
        widths[r * arms + k] = var.max(0.0).sqrt();
      }
    }
  });
}

/// One arm's (x . theta, x' A^-1 x) from its form; `xd` is the row as f64 padded to dp, `xf`
/// as f32 padded to d8. Each triangle row's dot product in f32, the rest in f64.
fn mean_var_scalar(f: &[f64], xd: &[f64], xf: &[f32], d: usize) -> (f64, f64) {
  let dp = xd.len();
  let d8 = xf.len();
  let (theta, rest) = f.split_at(dp);
  let diag = &rest[..dp];
  let rows = tri(f, dp);
  let mean: f64 = theta.iter().zip(xd).map(|(t, v)| t * v).sum();
  let mut on = 0.0;
  let mut off = 0.0;
  let mut at = 0;
  for i in 0..d {
    let len = d8 - start(i);
    let row: f32 = rows[at..at + len].iter().zip(&xf[start(i)..]).map(|(a, v)| a * v).sum();
    off += xd[i] * row as f64;
    on += diag[i] * xd[i] * xd[i];
    at += len;
  }
  (mean, on + 2.0 * off)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
  use super::{start, tri};
  use std::arch::x86_64::*;

  /// Sums the 4 lanes of `v`.
  #[inline]
  #[target_feature(enable = "avx2,fma")]
  unsafe fn hsum(v: __m256d) -> f64 {
    let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
  }

  /// Adds the 8 f32 lanes of `v` to the 4 f64 lanes of `acc`, widened.
  #[inline]
  #[target_feature(enable = "avx2,fma")]
  unsafe fn add_wide(acc: __m256d, v: __m256) -> __m256d {
    _mm256_add_pd(_mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(v))), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)))
  }

  /// [`super::mean_var_scalar`] with SIMD: theta . x and the diagonal 4 f64 lanes wide; the
  /// triangle's rows 8 f32 lanes wide, 4 at a time (a block shares its first column): each x
  /// vector is loaded once for the 4 rows' FMAs, into 4 independent sums, which are scaled by
  /// their x_i and added, widened to f64, into one accumulator; one horizontal sum at the end.
  ///
  /// # Safety
  /// AVX2+FMA; `f` is one arm's form for d features, `xd` the row padded to a multiple of 4 (f64),
  /// `xf` the row padded to a multiple of 8 (f32).
  #[target_feature(enable = "avx2,fma")]
  pub unsafe fn mean_var(f: &[f64], xd: &[f64], xf: &[f32], d: usize) -> (f64, f64) {
    let dp = xd.len();
    let d8 = xf.len();
    let (pf, px, pxf) = (f.as_ptr(), xd.as_ptr(), xf.as_ptr());
    let (theta, diag) = (pf, pf.add(dp));
    let mut mean = _mm256_setzero_pd();
    let mut on = _mm256_setzero_pd();
    let mut c = 0;
    while c < dp {
      let xv = _mm256_loadu_pd(px.add(c));
      mean = _mm256_fmadd_pd(_mm256_loadu_pd(theta.add(c)), xv, mean);
      on = _mm256_fmadd_pd(_mm256_mul_pd(_mm256_loadu_pd(diag.add(c)), xv), xv, on);
      c += 4;
    }
    let mut off = _mm256_setzero_pd();
    let mut at = tri(f, dp).as_ptr();
    let mut i = 0;
    while i + 4 <= d {
      // Rows i..i+4, each d8 - s long, stored one after another.
      let (s, len) = (start(i), d8 - start(i));
      let (p0, p1, p2, p3) = (at, at.add(len), at.add(2 * len), at.add(3 * len));
      let mut r = [_mm256_setzero_ps(); 4];
      let mut j = 0;
      while j < len {
        let xv = _mm256_loadu_ps(pxf.add(s + j));
        r[0] = _mm256_fmadd_ps(_mm256_loadu_ps(p0.add(j)), xv, r[0]);
        r[1] = _mm256_fmadd_ps(_mm256_loadu_ps(p1.add(j)), xv, r[1]);
        r[2] = _mm256_fmadd_ps(_mm256_loadu_ps(p2.add(j)), xv, r[2]);
        r[3] = _mm256_fmadd_ps(_mm256_loadu_ps(p3.add(j)), xv, r[3]);
        j += 8;
      }
      let mut v = _mm256_mul_ps(r[0], _mm256_set1_ps(*pxf.add(i)));
      v = _mm256_fmadd_ps(r[1], _mm256_set1_ps(*pxf.add(i + 1)), v);
      v = _mm256_fmadd_ps(r[2], _mm256_set1_ps(*pxf.add(i + 2)), v);
      v = _mm256_fmadd_ps(r[3], _mm256_set1_ps(*pxf.add(i + 3)), v);
      off = add_wide(off, v);
      at = at.add(4 * len);
      i += 4;
    }
    // The last d % 4 rows (a block of fewer than 4), one at a time.
    while i < d {
      let (s, len) = (start(i), d8 - start(i));
      let mut r = _mm256_setzero_ps();
      let mut j = 0;
      while j < len {
        r = _mm256_fmadd_ps(_mm256_loadu_ps(at.add(j)), _mm256_loadu_ps(pxf.add(s + j)), r);
        j += 8;
      }
      off = add_wide(off, _mm256_mul_ps(r, _mm256_set1_ps(*pxf.add(i))));
      at = at.add(len);
      i += 1;
    }
    (hsum(mean), hsum(on) + 2.0 * hsum(off))
  }
}
