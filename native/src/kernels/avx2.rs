//! AVX2 + FMA kernels. Callers must have checked CPU support (see `simd_level`).

use super::GemvShape;
use std::arch::x86_64::*;

/// Sums the 8 lanes of `v`.
///
/// # Safety
/// The CPU must support AVX2.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
  let lo = _mm256_castps256_ps128(v);
  let hi = _mm256_extractf128_ps(v, 1);
  let s = _mm_add_ps(lo, hi);
  let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
  _mm_cvtss_f32(s)
}

/// Dot product with four independent 8-lane accumulators (hides FMA latency), then one 8-lane
/// step, then a scalar tail.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a` and `b` must have the same length.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
  let n = a.len().min(b.len());
  let pa = a.as_ptr();
  let pb = b.as_ptr();
  let mut acc0 = _mm256_setzero_ps();
  let mut acc1 = _mm256_setzero_ps();
  let mut acc2 = _mm256_setzero_ps();
  let mut acc3 = _mm256_setzero_ps();
  let mut i = 0;
  while i + 32 <= n {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)), acc3);
    i += 32;
  }
  while i + 8 <= n {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
    i += 8;
  }
  let acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  let mut sum = hsum(acc);
  while i < n {
    sum += *pa.add(i) * *pb.add(i);
    i += 1;
  }
  sum
}

/// Dot products of four rows against one weight vector at once: each weight load is shared by
/// four rows, which matters for the common one-output (logistic/linear) model.
///
/// # Safety
/// AVX2+FMA; `r0..r3` and `w` all `n` long.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4(r0: *const f32, r1: *const f32, r2: *const f32, r3: *const f32, w: *const f32, n: usize) -> [f32; 4] {
  let mut a0 = _mm256_setzero_ps();
  let mut a1 = _mm256_setzero_ps();
  let mut a2 = _mm256_setzero_ps();
  let mut a3 = _mm256_setzero_ps();
  let mut i = 0;
  while i + 8 <= n {
    let wv = _mm256_loadu_ps(w.add(i));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r0.add(i)), wv, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r1.add(i)), wv, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r2.add(i)), wv, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r3.add(i)), wv, a3);
    i += 8;
  }
  let mut s = [hsum(a0), hsum(a1), hsum(a2), hsum(a3)];
  while i < n {
    let wi = *w.add(i);
    s[0] += *r0.add(i) * wi;
    s[1] += *r1.add(i) * wi;
    s[2] += *r2.add(i) * wi;
    s[3] += *r3.add(i) * wi;
    i += 1;
  }
  s
}

/// Linear part of the batched GEMV (see `kernels::gemv`).
///
/// # Safety
/// AVX2+FMA; `x` is rows*cols, `w` outputs*cols, `bias` empty or outputs, `out` rows*outputs.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemv_linear(x: &[f32], w: &[f32], bias: &[f32], s: GemvShape, out: &mut [f32]) {
  let GemvShape { rows, cols, outputs } = s;
  let px = x.as_ptr();
  for o in 0..outputs {
    let wr = w.as_ptr().add(o * cols);
    let b = if bias.is_empty() { 0.0 } else { bias[o] };
    let mut r = 0;
    while r + 4 <= rows {
      let d = dot4(
        px.add(r * cols),
        px.add((r + 1) * cols),
        px.add((r + 2) * cols),
        px.add((r + 3) * cols),
        wr,
        cols,
      );
      for k in 0..4 {
        out[(r + k) * outputs + o] = d[k] + b;
      }
      r += 4;
    }
    while r < rows {
      out[r * outputs + o] = dot(&x[r * cols..(r + 1) * cols], std::slice::from_raw_parts(wr, cols)) + b;
      r += 1;
    }
  }
}
