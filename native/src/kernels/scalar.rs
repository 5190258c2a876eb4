//! Scalar reference kernels: plain sequential loops, the ground truth the SIMD versions are
//! tested against.

use super::GemvShape;

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
  let mut acc = 0.0f32;
  for i in 0..a.len() {
    acc += a[i] * b[i];
  }
  acc
}

pub fn gemv_linear(x: &[f32], w: &[f32], bias: &[f32], s: GemvShape, out: &mut [f32]) {
  for r in 0..s.rows {
    let row = &x[r * s.cols..(r + 1) * s.cols];
    for o in 0..s.outputs {
      let wr = &w[o * s.cols..(o + 1) * s.cols];
      let b = if bias.is_empty() { 0.0 } else { bias[o] };
      out[r * s.outputs + o] = dot(row, wr) + b;
    }
  }
}
