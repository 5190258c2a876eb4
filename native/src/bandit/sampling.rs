//! Normal, Gamma (Marsaglia-Tsang 2000) and Beta sampling.

use super::rng::Xoshiro256;

/// Standard normal by the Marsaglia polar method (no trigonometry).
pub fn normal(rng: &mut Xoshiro256) -> f64 {
  loop {
    let u = 2.0 * rng.next_f64() - 1.0;
    let v = 2.0 * rng.next_f64() - 1.0;
    let s = u * u + v * v;
    if s > 0.0 && s < 1.0 {
      return u * (-2.0 * s.ln() / s).sqrt();
    }
  }
}

/// Standard normals from the polar method with both deviates of each accepted pair used (one
/// logarithm, square root and division per two): for loops that draw many, like Thompson
/// sampling's rounds. `normal` keeps its one-per-call sequence for seeded callers.
pub struct NormalPairs {
  spare: Option<f64>,
}

impl NormalPairs {
  pub fn new() -> Self {
    NormalPairs { spare: None }
  }

  #[inline]
  pub fn next(&mut self, rng: &mut Xoshiro256) -> f64 {
    if let Some(z) = self.spare.take() {
      return z;
    }
    loop {
      let u = 2.0 * rng.next_f64() - 1.0;
      let v = 2.0 * rng.next_f64() - 1.0;
      let s = u * u + v * v;
      if s > 0.0 && s < 1.0 {
        let f = (-2.0 * s.ln() / s).sqrt();
        self.spare = Some(v * f);
        return u * f;
      }
    }
  }
}

/// Marsaglia-Tsang for shape >= 1: returns a Gamma(shape, 1) sample.
fn gamma_ge1(rng: &mut Xoshiro256, shape: f64) -> f64 {
  gamma_ge1_from(rng, shape, normal)
}

/// Marsaglia-Tsang for shape >= 1 with the standard normals drawn by `next_normal`.
#[inline]
fn gamma_ge1_from(rng: &mut Xoshiro256, shape: f64, mut next_normal: impl FnMut(&mut Xoshiro256) -> f64) -> f64 {
  let d = shape - 1.0 / 3.0;
  let c = 1.0 / (9.0 * d).sqrt();
  loop {
    let x = next_normal(rng);
    let v = 1.0 + c * x;
    if v <= 0.0 {
      continue;
    }
    let v = v * v * v;
    let u = rng.next_open01();
    let x2 = x * x;
    // Cheap squeeze first; the log test only when it fails.
    if u < 1.0 - 0.0331 * x2 * x2 {
      return d * v;
    }
    if u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
      return d * v;
    }
  }
}

/// ln of a Gamma(shape, 1) sample. For shape < 1 uses Gamma(shape) = Gamma(shape + 1) * U^(1/shape)
/// in log space, because U^(1/shape) underflows to 0 for small shapes and a Beta built from two
/// zeros would be undefined.
pub fn ln_gamma_sample(rng: &mut Xoshiro256, shape: f64) -> f64 {
  if shape >= 1.0 {
    gamma_ge1(rng, shape).ln()
  } else {
    gamma_ge1(rng, shape + 1.0).ln() + rng.next_open01().ln() / shape
  }
}

/// A Gamma(shape, scale) sample. `shape` and `scale` must be finite and > 0.
pub fn gamma(rng: &mut Xoshiro256, shape: f64, scale: f64) -> f64 {
  if shape >= 1.0 {
    gamma_ge1(rng, shape) * scale
  } else {
    ln_gamma_sample(rng, shape).exp() * scale
  }
}

/// A Beta(a, b) sample as X / (X + Y), X ~ Gamma(a), Y ~ Gamma(b). When a shape is below 1 it
/// is computed from the logs, X / (X + Y) = 1 / (1 + exp(lnY - lnX)), exact even when both are
/// tiny; with both shapes >= 1 neither sample is anywhere near underflow, and the direct ratio
/// (same draws, same value up to rounding) saves two logarithms and an exponential, which
/// Thompson sampling pays per arm and round.
pub fn beta(rng: &mut Xoshiro256, a: f64, b: f64) -> f64 {
  if a >= 1.0 && b >= 1.0 {
    let x = gamma_ge1(rng, a);
    let y = gamma_ge1(rng, b);
    return x / (x + y);
  }
  let lx = ln_gamma_sample(rng, a);
  let ly = ln_gamma_sample(rng, b);
  1.0 / (1.0 + (ly - lx).exp())
}

/// [`beta`] with its normals from `pairs` when both shapes are >= 1 (same distribution, fewer
/// logarithms; a different sequence than `beta` for the same seed).
#[inline]
pub fn beta_paired(rng: &mut Xoshiro256, pairs: &mut NormalPairs, a: f64, b: f64) -> f64 {
  if a >= 1.0 && b >= 1.0 {
    let x = gamma_ge1_from(rng, a, |r| pairs.next(r));
    let y = gamma_ge1_from(rng, b, |r| pairs.next(r));
    return x / (x + y);
  }
  beta(rng, a, b)
}

/// Thompson sampling over Beta posteriors: draws one sample per arm, writes them to `samples`
/// when given, and returns the index of the largest (ties go to the lowest index).
pub fn thompson_select(rng: &mut Xoshiro256, alphas: &[f64], betas: &[f64], mut samples: Option<&mut [f64]>) -> usize {
  let mut best = 0;
  let mut best_v = f64::NEG_INFINITY;
  for k in 0..alphas.len() {
    let v = beta(rng, alphas[k], betas[k]);
    if let Some(s) = samples.as_deref_mut() {
      s[k] = v;
    }
    if v > best_v {
      best_v = v;
      best = k;
    }
  }
  best
}
