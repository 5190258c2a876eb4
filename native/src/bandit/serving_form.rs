//! A linear bandit's state as the request path reads it: per arm, theta = A^-1 b and the upper
//! triangle of the symmetric A^-1, half the bytes of A^-1 itself. A decision reads every arm's
//! A^-1 once (x' A^-1 x, the width): 5 arms x 100 x 100 f64 is 400 KB per decision at
//! demo-bandit's shape, which made `arm_stats` bound by cache traffic rather than arithmetic.
//! The form is built once per published state (`build`), on each reading thread, and serves
//! every decision until the next one.
//!
//! Per arm, `arm_len(d)` f64, with dp = d rounded up to a multiple of 4:
//!   theta  dp values (A^-1 b, zero-padded)
//!   diag   dp values (A^-1's diagonal, zero-padded)
//!   rows   for each i < d, columns start(i) .. dp of row i, where start(i) = i rounded down to
//!          a multiple of 4: the entries right of the diagonal, zero at columns <= i and >= d, so
//!          that every row is whole 4-wide vectors and the 4 rows of a block start at the same
//!          column (the SIMD kernel reads each x vector once for all 4).
//! Then x' A^-1 x = sum_i diag_i x_i^2 + 2 sum_i x_i sum_{j > i} A^-1_ij x_j.

use std::cell::RefCell;

use super::linear::ArmShape;
use crate::kernels::{simd_level, SimdLevel};

/// `d` rounded up to a multiple of 4.
pub fn padded(d: usize) -> usize {
  d.div_ceil(4) * 4
}

/// First stored column of row `i`.
#[inline(always)]
fn start(i: usize) -> usize {
  i & !3
}

/// f64 values per arm of the serving form for `d` context features.
pub fn arm_len(d: usize) -> usize {
  let dp = padded(d);
  2 * dp + (0..d).map(|i| dp - start(i)).sum::<usize>()
}

/// Writes the serving form of K arms (`a_inv` K*d*d symmetric per arm, `b` K*d) into `out`
/// (K * arm_len(d)). Lengths must already be checked by the caller.
pub fn build(a_inv: &[f64], b: &[f64], s: ArmShape, out: &mut [f64]) {
  let ArmShape { arms, d } = s;
  let dp = padded(d);
  let per = arm_len(d);
  for k in 0..arms {
    let ai = &a_inv[k * d * d..(k + 1) * d * d];
    let bk = &b[k * d..(k + 1) * d];
    let o = &mut out[k * per..(k + 1) * per];
    o.fill(0.0);
    let (theta, rest) = o.split_at_mut(dp);
    let (diag, mut rows) = rest.split_at_mut(dp);
    for i in 0..d {
      let row = &ai[i * d..(i + 1) * d];
      theta[i] = row.iter().zip(bk).map(|(a, v)| a * v).sum();
      diag[i] = row[i];
      let (dst, tail) = rows.split_at_mut(dp - start(i));
      for j in (i + 1)..d {
        dst[j - start(i)] = row[j];
      }
      rows = tail;
    }
  }
}

thread_local! {
  /// The context row as f64, zero-padded to dp: grown once to the largest d seen.
  static XD: RefCell<Vec<f64>> = const { RefCell::new(Vec::new()) };
}

/// Per row r and arm k: `means[r*K + k] = x_r . theta_k`, `widths[r*K + k] = sqrt(max(0,
/// x_r' A_k^-1 x_r))`, from the serving form `form` (K * arm_len(d)). The same numbers as
/// `linear::arm_stats` up to rounding. Lengths must already be checked by the caller.
pub fn stats(form: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64]) {
  match simd_level() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: Avx2Fma is only selected after CPUID reported both features.
    SimdLevel::Avx2Fma => with_rows(form, x, s, means, widths, |f, xd, d| unsafe { avx2::mean_var(f, xd, d) }),
    _ => stats_scalar(form, x, s, means, widths),
  }
}

/// The scalar reference of [`stats`].
pub fn stats_scalar(form: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64]) {
  with_rows(form, x, s, means, widths, mean_var_scalar)
}

/// Runs `mean_var` over every row and arm, the row converted to padded f64 once.
fn with_rows(form: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64], mean_var: impl Fn(&[f64], &[f64], usize) -> (f64, f64)) {
  let ArmShape { arms, d } = s;
  let dp = padded(d);
  let per = arm_len(d);
  let rows = x.len().checked_div(d).unwrap_or(0);
  XD.with(|cell| {
    let mut xd = cell.borrow_mut();
    if xd.len() < dp {
      xd.resize(dp, 0.0);
    }
    for r in 0..rows {
      for (dst, src) in xd.iter_mut().zip(&x[r * d..(r + 1) * d]) {
        *dst = *src as f64;
      }
      xd[d..dp].fill(0.0);
      for k in 0..arms {
        let (mean, var) = mean_var(&form[k * per..(k + 1) * per], &xd[..dp], d);
        means[r * arms + k] = mean;
        // Rounding can push a zero variance slightly negative; clamp before the square root.
        widths[r * arms + k] = var.max(0.0).sqrt();
      }
    }
  });
}

/// One arm's (x . theta, x' A^-1 x) from its form; `xd` is the row as padded f64.
fn mean_var_scalar(f: &[f64], xd: &[f64], d: usize) -> (f64, f64) {
  let dp = xd.len();
  let (theta, rest) = f.split_at(dp);
  let (diag, rows) = rest.split_at(dp);
  let mean: f64 = theta.iter().zip(xd).map(|(t, v)| t * v).sum();
  let mut on = 0.0;
  let mut off = 0.0;
  let mut at = 0;
  for i in 0..d {
    let len = dp - start(i);
    let row: f64 = rows[at..at + len].iter().zip(&xd[start(i)..]).map(|(a, v)| a * v).sum();
    off += xd[i] * row;
    on += diag[i] * xd[i] * xd[i];
    at += len;
  }
  (mean, on + 2.0 * off)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
  use super::start;
  use std::arch::x86_64::*;

  /// Sums the 4 lanes of `v`.
  #[inline]
  #[target_feature(enable = "avx2,fma")]
  unsafe fn hsum(v: __m256d) -> f64 {
    let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
  }

  /// [`super::mean_var_scalar`] 4 lanes wide. Rows go 4 at a time (a block shares its first
  /// column): each x vector is loaded once for the 4 rows' FMAs, into 4 independent vector
  /// sums, which are scaled by their x_i into one accumulator; one horizontal sum at the end.
  ///
  /// # Safety
  /// AVX2+FMA; `f` is one arm's form for d features, `xd` the row padded to a multiple of 4.
  #[target_feature(enable = "avx2,fma")]
  pub unsafe fn mean_var(f: &[f64], xd: &[f64], d: usize) -> (f64, f64) {
    let dp = xd.len();
    let (pf, px) = (f.as_ptr(), xd.as_ptr());
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
    let mut at = pf.add(2 * dp);
    let mut i = 0;
    while i + 4 <= d {
      // Rows i..i+4, each dp - s long, stored one after another.
      let (s, len) = (start(i), dp - start(i));
      let (p0, p1, p2, p3) = (at, at.add(len), at.add(2 * len), at.add(3 * len));
      let mut r = [_mm256_setzero_pd(); 4];
      let mut j = 0;
      while j < len {
        let xv = _mm256_loadu_pd(px.add(s + j));
        r[0] = _mm256_fmadd_pd(_mm256_loadu_pd(p0.add(j)), xv, r[0]);
        r[1] = _mm256_fmadd_pd(_mm256_loadu_pd(p1.add(j)), xv, r[1]);
        r[2] = _mm256_fmadd_pd(_mm256_loadu_pd(p2.add(j)), xv, r[2]);
        r[3] = _mm256_fmadd_pd(_mm256_loadu_pd(p3.add(j)), xv, r[3]);
        j += 4;
      }
      for (q, rq) in r.iter().enumerate() {
        off = _mm256_fmadd_pd(*rq, _mm256_set1_pd(*px.add(i + q)), off);
      }
      at = at.add(4 * len);
      i += 4;
    }
    // The last d % 4 rows (a block of fewer than 4), one at a time.
    while i < d {
      let (s, len) = (start(i), dp - start(i));
      let mut r = _mm256_setzero_pd();
      let mut j = 0;
      while j < len {
        r = _mm256_fmadd_pd(_mm256_loadu_pd(at.add(j)), _mm256_loadu_pd(px.add(s + j)), r);
        j += 4;
      }
      off = _mm256_fmadd_pd(r, _mm256_set1_pd(*px.add(i)), off);
      at = at.add(len);
      i += 1;
    }
    (hsum(mean), hsum(on) + 2.0 * hsum(off))
  }
}
