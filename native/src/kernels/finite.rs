//! Finite checks of raw float tensors (FP32, FP64, FP16 bit patterns): the index of the first
//! NaN or infinity, so that binary tensors are refused exactly like JSON ones.
//!
//! A value is NaN or infinite exactly when its exponent bits are all ones, so each check is an
//! integer mask and compare on the raw bits: no float comparison, and the FP16 case needs no
//! conversion. The AVX2 versions compare 32 (FP32), 16 (FP64) or 64 (FP16) elements per step,
//! OR the masks together and only on a hit look for the exact index with the scalar loop.

/// Exponent mask of IEEE binary32 / binary64 / binary16: all ones means NaN or infinity.
pub const F32_EXP: u32 = 0x7f80_0000;
pub const F64_EXP: u64 = 0x7ff0_0000_0000_0000;
pub const F16_EXP: u16 = 0x7c00;

/// Scalar references: plain loops, the ground truth the SIMD versions are tested against.
pub mod scalar {
  use super::{F16_EXP, F32_EXP, F64_EXP};

  pub fn first_non_finite_f32(x: &[f32]) -> Option<usize> {
    x.iter().position(|v| v.to_bits() & F32_EXP == F32_EXP)
  }

  pub fn first_non_finite_f64(x: &[f64]) -> Option<usize> {
    x.iter().position(|v| v.to_bits() & F64_EXP == F64_EXP)
  }

  pub fn first_non_finite_f16(x: &[u16]) -> Option<usize> {
    x.iter().position(|v| v & F16_EXP == F16_EXP)
  }
}

#[cfg(target_arch = "x86_64")]
pub mod avx2 {
  use super::{scalar, F16_EXP, F32_EXP, F64_EXP};
  use std::arch::x86_64::*;

  /// Generates one AVX2 scan: 4 vectors per step, then one vector per step, then a scalar tail.
  /// `$lanes` elements fit one 256-bit vector; `$splat` and `$cmpeq` work on that lane width.
  macro_rules! scan {
    ($name:ident, $t:ty, $lanes:expr, $mask:expr, $splat:ident, $cmpeq:ident, $reference:path) => {
      /// # Safety
      /// The CPU must support AVX2 (see `kernels::simd_level`).
      #[target_feature(enable = "avx2")]
      pub unsafe fn $name(x: &[$t]) -> Option<usize> {
        let n = x.len();
        let p = x.as_ptr();
        let mask = $splat($mask);
        /// Lanes of the vector at `i` whose exponent bits are all ones.
        ///
        /// # Safety
        /// AVX2; `i + lanes <= n` (unaligned loads are allowed).
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn hit(p: *const $t, i: usize, mask: __m256i) -> __m256i {
          let v = _mm256_loadu_si256(p.add(i) as *const __m256i);
          $cmpeq(_mm256_and_si256(v, mask), mask)
        }
        let mut i = 0;
        while i + 4 * $lanes <= n {
          let any = _mm256_or_si256(
            _mm256_or_si256(hit(p, i, mask), hit(p, i + $lanes, mask)),
            _mm256_or_si256(hit(p, i + 2 * $lanes, mask), hit(p, i + 3 * $lanes, mask)),
          );
          if _mm256_testz_si256(any, any) == 0 {
            return $reference(&x[i..i + 4 * $lanes]).map(|k| i + k);
          }
          i += 4 * $lanes;
        }
        while i + $lanes <= n {
          let any = hit(p, i, mask);
          if _mm256_testz_si256(any, any) == 0 {
            return $reference(&x[i..i + $lanes]).map(|k| i + k);
          }
          i += $lanes;
        }
        $reference(&x[i..]).map(|k| i + k)
      }
    };
  }

  scan!(first_non_finite_f32, f32, 8, F32_EXP as i32, _mm256_set1_epi32, _mm256_cmpeq_epi32, scalar::first_non_finite_f32);
  scan!(first_non_finite_f64, f64, 4, F64_EXP as i64, _mm256_set1_epi64x, _mm256_cmpeq_epi64, scalar::first_non_finite_f64);
  scan!(first_non_finite_f16, u16, 16, F16_EXP as i16, _mm256_set1_epi16, _mm256_cmpeq_epi16, scalar::first_non_finite_f16);
}

use super::{simd_level, SimdLevel};

macro_rules! dispatch {
  ($name:ident, $t:ty) => {
    /// Index of the first NaN or infinite element, on the best available instruction set.
    pub fn $name(x: &[$t]) -> Option<usize> {
      match simd_level() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: Avx2Fma is only selected after CPUID reported AVX2.
        SimdLevel::Avx2Fma => unsafe { avx2::$name(x) },
        _ => scalar::$name(x),
      }
    }
  };
}

dispatch!(first_non_finite_f32, f32);
dispatch!(first_non_finite_f64, f64);
dispatch!(first_non_finite_f16, u16);

#[cfg(test)]
mod tests {
  use super::*;

  /// Special values of each width: every one is refused, and the finite edge cases are not.
  const F32_BAD: [u32; 5] = [0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0xffc0_0001, 0x7f80_0001];
  const F32_GOOD: [u32; 5] = [0x7f7f_ffff, 0xff7f_ffff, 0x0000_0001, 0x8000_0000, 0x3f80_0000];
  const F64_BAD: [u64; 4] = [0x7ff0_0000_0000_0000, 0xfff0_0000_0000_0000, 0x7ff8_0000_0000_0000, 0x7ff0_0000_0000_0001];
  const F64_GOOD: [u64; 3] = [0x7fef_ffff_ffff_ffff, 0x0000_0000_0000_0001, 0x8000_0000_0000_0000];
  const F16_BAD: [u16; 4] = [0x7c00, 0xfc00, 0x7e00, 0x7c01];
  const F16_GOOD: [u16; 4] = [0x7bff, 0xfbff, 0x0001, 0x3c00];

  fn have_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
      std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
      false
    }
  }

  /// For every length 0..=n_max and every position of one bad value (plus none), SIMD, the
  /// dispatcher and the scalar reference agree, and the reference finds exactly that position.
  macro_rules! agree {
    ($test:ident, $t:ty, $from:expr, $good:expr, $bad:expr, $name:ident) => {
      #[test]
      fn $test() {
        for n in 0..=200usize {
          let mut x: Vec<$t> = (0..n).map(|i| $from($good[i % $good.len()])).collect();
          let check = |x: &[$t], want: Option<usize>| {
            assert_eq!(scalar::$name(x), want, "scalar n={n}");
            assert_eq!($name(x), want, "dispatch n={n}");
            #[cfg(target_arch = "x86_64")]
            if have_avx2() {
              // SAFETY: AVX2 was detected just above.
              assert_eq!(unsafe { avx2::$name(x) }, want, "avx2 n={n}");
            }
            // A view one element in (unaligned for the vector loads): the same as the reference.
            if !x.is_empty() {
              assert_eq!($name(&x[1..]), scalar::$name(&x[1..]), "offset n={n}");
            }
          };
          check(&x, None);
          for at in 0..n {
            let bad = $from($bad[at % $bad.len()]);
            let keep = x[at];
            x[at] = bad;
            check(&x, Some(at));
            // A second bad value later does not change the answer.
            if at + 1 < n {
              let later = x[n - 1];
              x[n - 1] = bad;
              check(&x, Some(at));
              x[n - 1] = later;
            }
            x[at] = keep;
          }
        }
      }
    };
  }

  agree!(f32_simd_equals_scalar_on_every_length_and_position, f32, f32::from_bits, F32_GOOD, F32_BAD, first_non_finite_f32);
  agree!(f64_simd_equals_scalar_on_every_length_and_position, f64, f64::from_bits, F64_GOOD, F64_BAD, first_non_finite_f64);
  agree!(f16_simd_equals_scalar_on_every_length_and_position, u16, |b: u16| b, F16_GOOD, F16_BAD, first_non_finite_f16);

  #[test]
  fn every_f16_pattern_is_classified_by_its_exponent() {
    for h in 0..=u16::MAX {
      let exp = (h >> 10) & 0x1f;
      assert_eq!(scalar::first_non_finite_f16(&[h]).is_some(), exp == 0x1f, "{h:#06x}");
    }
  }

  #[test]
  fn f32_and_f64_agree_with_is_finite() {
    for v in [0.0f64, -0.0, 1.5, f64::MAX, f64::MIN_POSITIVE, 5e-324, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
      assert_eq!(scalar::first_non_finite_f64(&[v]).is_none(), v.is_finite(), "{v}");
      let f = v as f32;
      assert_eq!(scalar::first_non_finite_f32(&[f]).is_none(), f.is_finite(), "{f}");
    }
  }
}
