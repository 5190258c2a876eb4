//! Thompson sampling over independent per-arm posteriors (Normal or Beta): one round picks the
//! arm whose sample is largest; further rounds estimate each arm's probability of being picked,
//! the propensity a decision log needs.

use super::rng::Xoshiro256;
use super::sampling::{self, NormalPairs};

/// Index of the largest of `n` values produced by `sample(k)`, ties to the lowest index.
#[inline]
fn argmax(n: usize, mut sample: impl FnMut(usize) -> f64) -> usize {
  let mut best = 0;
  let mut best_v = f64::NEG_INFINITY;
  for k in 0..n {
    let v = sample(k);
    if v > best_v {
      best_v = v;
      best = k;
    }
  }
  best
}

/// The picked arm of one round, plus, when `probs` is given and `draws` > 0, the share of
/// `draws` further rounds each arm won (written to `probs`, summing to 1).
fn select(mut round: impl FnMut() -> usize, draws: usize, probs: Option<&mut [f64]>) -> usize {
  let pick = round();
  if let Some(p) = probs.filter(|_| draws > 0) {
    p.fill(0.0);
    for _ in 0..draws {
      p[round()] += 1.0;
    }
    let inv = 1.0 / draws as f64;
    for v in p.iter_mut() {
      *v *= inv;
    }
  }
  pick
}

/// Thompson sampling over N(mean_k, sd_k^2) posteriors. `sds` are >= 0 (0: a point mass, which
/// draws nothing); all finite, checked by the caller.
pub fn thompson_normal(rng: &mut Xoshiro256, means: &[f64], sds: &[f64], draws: usize, probs: Option<&mut [f64]>) -> usize {
  let mut z = NormalPairs::new();
  let round = || {
    argmax(means.len(), |k| {
      let sd = sds[k];
      if sd == 0.0 {
        means[k]
      } else {
        means[k] + sd * z.next(rng)
      }
    })
  };
  select(round, draws, probs)
}

/// Thompson sampling over Beta(alpha_k, beta_k) posteriors (parameters finite and > 0, checked
/// by the caller).
pub fn thompson_beta(rng: &mut Xoshiro256, alphas: &[f64], betas: &[f64], draws: usize, probs: Option<&mut [f64]>) -> usize {
  let mut z = NormalPairs::new();
  let round = || argmax(alphas.len(), |k| sampling::beta_paired(rng, &mut z, alphas[k], betas[k]));
  select(round, draws, probs)
}
