//! AVX2 + FMA version of `linear::arm_stats`. Callers must have checked CPU support.
//!
//! Per arm and row, u = A^-1 x is built a block of columns at a time as sum_j x_j * row_j (A^-1
//! is symmetric), the block held in up to 8 registers of 4 doubles: 8 independent FMA chains,
//! no horizontal sum per element and no store of u. Each finished block goes straight into the
//! mean (b . u) and variance (x . u) accumulators. x is converted from f32 as it is read, so
//! nothing is allocated.

use super::linear::ArmShape;
use std::arch::x86_64::*;

/// Sums the 4 lanes of `v`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256d) -> f64 {
  let s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
}

/// Columns c..c + 4*NV of u = A^-1 x, folded into `mean` += b . u and `var` += x . u.
///
/// # Safety
/// AVX2+FMA; `ai` is d x d, `x` and `b` are d long, c + 4*NV <= d.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const NV: usize>(ai: *const f64, b: *const f64, x: *const f32, d: usize, c: usize, mean: &mut __m256d, var: &mut __m256d) {
  let mut u = [_mm256_setzero_pd(); NV];
  for j in 0..d {
    let xj = _mm256_set1_pd(*x.add(j) as f64);
    let row = ai.add(j * d + c);
    for (v, acc) in u.iter_mut().enumerate() {
      *acc = _mm256_fmadd_pd(_mm256_loadu_pd(row.add(4 * v)), xj, *acc);
    }
  }
  for (v, acc) in u.iter().enumerate() {
    let xc = _mm256_cvtps_pd(_mm_loadu_ps(x.add(c + 4 * v)));
    *mean = _mm256_fmadd_pd(_mm256_loadu_pd(b.add(c + 4 * v)), *acc, *mean);
    *var = _mm256_fmadd_pd(xc, *acc, *var);
  }
}

/// One arm and one row: (x . A^-1 b, x' A^-1 x).
///
/// # Safety
/// AVX2+FMA; `ai` d x d, `b` and `x` d long.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn mean_var(ai: &[f64], b: &[f64], x: &[f32], d: usize) -> (f64, f64) {
  let (pa, pb, px) = (ai.as_ptr(), b.as_ptr(), x.as_ptr());
  let mut mean = _mm256_setzero_pd();
  let mut var = _mm256_setzero_pd();
  let mut c = 0;
  while c + 32 <= d {
    block::<8>(pa, pb, px, d, c, &mut mean, &mut var);
    c += 32;
  }
  if c + 16 <= d {
    block::<4>(pa, pb, px, d, c, &mut mean, &mut var);
    c += 16;
  }
  if c + 8 <= d {
    block::<2>(pa, pb, px, d, c, &mut mean, &mut var);
    c += 8;
  }
  if c + 4 <= d {
    block::<1>(pa, pb, px, d, c, &mut mean, &mut var);
    c += 4;
  }
  let (mut m, mut s) = (hsum(mean), hsum(var));
  // The last d % 4 columns, read down the column (at most 3 of them).
  for col in c..d {
    let mut u = 0.0;
    for j in 0..d {
      u += ai[j * d + col] * x[j] as f64;
    }
    m += b[col] * u;
    s += x[col] as f64 * u;
  }
  (m, s)
}

/// See `linear::arm_stats`. Arms are the outer loop so one arm's A^-1 serves every row while it
/// is in cache.
///
/// # Safety
/// AVX2+FMA; lengths as checked by the caller (a_inv K*d*d, b K*d, x rows*d, outputs rows*K).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn arm_stats(a_inv: &[f64], b: &[f64], x: &[f32], s: ArmShape, means: &mut [f64], widths: &mut [f64]) {
  let ArmShape { arms, d } = s;
  let rows = x.len().checked_div(d).unwrap_or(0);
  for k in 0..arms {
    let ai = &a_inv[k * d * d..(k + 1) * d * d];
    let bk = &b[k * d..(k + 1) * d];
    for r in 0..rows {
      let (mean, var) = mean_var(ai, bk, &x[r * d..(r + 1) * d], d);
      means[r * arms + k] = mean;
      // Rounding can push a zero variance slightly negative; clamp before the square root.
      widths[r * arms + k] = var.max(0.0).sqrt();
    }
  }
}
