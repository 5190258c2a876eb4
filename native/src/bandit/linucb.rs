//! Disjoint LinUCB (Li et al. 2010): per arm k, A_k^-1 (d x d, row-major) and b_k (d).
//! score_k = theta_k . x + alpha * sqrt(x' A_k^-1 x), with theta_k = A_k^-1 b_k.

/// Writes one score per arm into `out`. `a_inv` is k*d*d, `b` is k*d, `x` is d, `out` is k.
/// `scratch` must hold d values (A^-1 x).
pub fn scores(a_inv: &[f64], b: &[f64], x: &[f64], alpha: f64, out: &mut [f64], scratch: &mut [f64]) {
  let d = x.len();
  for (k, score) in out.iter_mut().enumerate() {
    let ai = &a_inv[k * d * d..(k + 1) * d * d];
    let bk = &b[k * d..(k + 1) * d];
    // A^-1 x, then x' A^-1 x; theta . x = (A^-1 b) . x = b . (A^-1 x) because A^-1 is symmetric.
    for i in 0..d {
      let row = &ai[i * d..(i + 1) * d];
      scratch[i] = row.iter().zip(x).map(|(a, v)| a * v).sum();
    }
    let mean: f64 = bk.iter().zip(scratch.iter()).map(|(bv, s)| bv * s).sum();
    let var: f64 = x.iter().zip(scratch.iter()).map(|(xv, s)| xv * s).sum();
    // Rounding can push a zero variance slightly negative; clamp before the square root.
    *score = mean + alpha * var.max(0.0).sqrt();
  }
}

/// Sherman-Morrison rank-one update after observing reward `r` for context `x`:
/// A^-1 <- A^-1 - (A^-1 x)(x' A^-1) / (1 + x' A^-1 x);  b <- b + r x.
/// `scratch` must hold d values. Returns false (and changes nothing) if the update would be
/// numerically singular (denominator not positive and finite).
pub fn sherman_morrison(a_inv: &mut [f64], b: &mut [f64], x: &[f64], r: f64, scratch: &mut [f64]) -> bool {
  let d = x.len();
  for i in 0..d {
    scratch[i] = a_inv[i * d..(i + 1) * d].iter().zip(x).map(|(a, v)| a * v).sum();
  }
  let denom = 1.0 + x.iter().zip(scratch.iter()).map(|(xv, s)| xv * s).sum::<f64>();
  if !(denom.is_finite() && denom > 0.0) {
    return false;
  }
  let inv = 1.0 / denom;
  // A^-1 is symmetric, so x' A^-1 = (A^-1 x)' and the update is u u' / denom.
  for i in 0..d {
    let ui = scratch[i] * inv;
    let row = &mut a_inv[i * d..(i + 1) * d];
    for j in 0..d {
      row[j] -= ui * scratch[j];
    }
  }
  for i in 0..d {
    b[i] += r * x[i];
  }
  true
}
