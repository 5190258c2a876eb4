//! f32 linear-algebra kernels: dot product and batched GEMV with optional activation.
//!
//! Every kernel has a scalar reference (`scalar`) and an AVX2+FMA version (`avx2`); which one runs
//! is decided once per process from CPUID (`simd_level`). The scalar versions stay callable so
//! tests and benchmarks can compare the two.

pub mod activation;
pub mod finite;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub mod avx2;

use std::sync::OnceLock;

pub use activation::Activation;

/// Instruction-set level the dispatching kernels use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdLevel {
  Avx2Fma,
  Scalar,
}

impl SimdLevel {
  pub fn name(self) -> &'static str {
    match self {
      SimdLevel::Avx2Fma => "avx2+fma",
      SimdLevel::Scalar => "scalar",
    }
  }
}

static LEVEL: OnceLock<SimdLevel> = OnceLock::new();

/// Detects the best level once. `SLUICE_SIMD=scalar` forces the reference path (for debugging
/// and for measuring what SIMD buys on a given machine).
pub fn simd_level() -> SimdLevel {
  *LEVEL.get_or_init(|| {
    if std::env::var("SLUICE_SIMD").map(|v| v == "scalar").unwrap_or(false) {
      return SimdLevel::Scalar;
    }
    #[cfg(target_arch = "x86_64")]
    {
      if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        return SimdLevel::Avx2Fma;
      }
    }
    SimdLevel::Scalar
  })
}

/// Dot product of two equal-length slices, on the best available instruction set.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
  debug_assert_eq!(a.len(), b.len());
  match simd_level() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: Avx2Fma is only selected after CPUID reported both features.
    SimdLevel::Avx2Fma => unsafe { avx2::dot(a, b) },
    _ => scalar::dot(a, b),
  }
}

/// Shape of a batched GEMV: `rows` input rows of `cols` features, `outputs` weight rows.
#[derive(Debug, Clone, Copy)]
pub struct GemvShape {
  pub rows: usize,
  pub cols: usize,
  pub outputs: usize,
}

/// `out[r, o] = act(sum_c x[r, c] * w[o, c] + bias[o])` for a row-major batch `x` (rows x cols)
/// and row-major weights `w` (outputs x cols). `bias` is empty (zero) or `outputs` long.
/// Lengths must already be checked by the caller.
pub fn gemv(x: &[f32], w: &[f32], bias: &[f32], s: GemvShape, act: Activation, out: &mut [f32]) {
  match simd_level() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: Avx2Fma is only selected after CPUID reported both features.
    SimdLevel::Avx2Fma => unsafe { avx2::gemv_linear(x, w, bias, s, out) },
    _ => scalar::gemv_linear(x, w, bias, s, out),
  }
  activation::apply(act, out, s.outputs);
}

/// The scalar reference of [`gemv`], whatever the CPU supports.
pub fn gemv_scalar(x: &[f32], w: &[f32], bias: &[f32], s: GemvShape, act: Activation, out: &mut [f32]) {
  scalar::gemv_linear(x, w, bias, s, out);
  activation::apply(act, out, s.outputs);
}
