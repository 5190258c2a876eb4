//! Tests of the linear-bandit kernels and Thompson sampling against independent references:
//! the f64 `linucb` functions, a Gauss-Jordan inverse, and probabilities derived exactly.
// Matrix code indexes rows and columns by number; iterators would hide the i/j structure.
#![allow(clippy::needless_range_loop)]

use super::linear::{self, ArmShape, Events, LearnState};
use super::linucb;
use super::rng::Xoshiro256;
use super::serving_form;
use super::thompson;

fn uniform(rng: &mut Xoshiro256, n: usize, scale: f64) -> Vec<f64> {
  (0..n).map(|_| (2.0 * rng.next_f64() - 1.0) * scale).collect()
}

fn uniform_f32(rng: &mut Xoshiro256, n: usize, scale: f64) -> Vec<f32> {
  uniform(rng, n, scale).into_iter().map(|v| v as f32).collect()
}

/// A random symmetric positive-definite d x d matrix: lambda I + sum of `n` outer products.
fn random_spd(rng: &mut Xoshiro256, d: usize, n: usize, lambda: f64) -> Vec<f64> {
  let mut a = vec![0.0; d * d];
  for i in 0..d {
    a[i * d + i] = lambda;
  }
  for _ in 0..n {
    let x = uniform(rng, d, 1.0);
    for i in 0..d {
      for j in 0..d {
        a[i * d + j] += x[i] * x[j];
      }
    }
  }
  a
}

/// Gauss-Jordan with partial pivoting: a reference inverse independent of Cholesky.
fn gauss_jordan(a: &[f64], d: usize) -> Vec<f64> {
  let mut m = a.to_vec();
  let mut inv = vec![0.0; d * d];
  for i in 0..d {
    inv[i * d + i] = 1.0;
  }
  for c in 0..d {
    let p = (c..d).max_by(|&r, &s| m[r * d + c].abs().total_cmp(&m[s * d + c].abs())).unwrap();
    for k in 0..d {
      m.swap(c * d + k, p * d + k);
      inv.swap(c * d + k, p * d + k);
    }
    let piv = m[c * d + c];
    for k in 0..d {
      m[c * d + k] /= piv;
      inv[c * d + k] /= piv;
    }
    for r in (0..d).filter(|&r| r != c) {
      let f = m[r * d + c];
      for k in 0..d {
        m[r * d + k] -= f * m[c * d + k];
        inv[r * d + k] -= f * inv[c * d + k];
      }
    }
  }
  inv
}

fn assert_close(got: f64, want: f64, rel: f64, what: &str) {
  let tol = rel * want.abs().max(1.0);
  assert!((got - want).abs() <= tol, "{what}: got {got}, want {want} (tolerance {tol})");
}

fn have_avx2() -> bool {
  #[cfg(target_arch = "x86_64")]
  {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
  }
  #[cfg(not(target_arch = "x86_64"))]
  {
    false
  }
}

/// Every implementation of arm_stats: (name, function). The serving form's are built from the
/// same state first, so that every test of arm_stats holds for them too.
type StatsFn = fn(&[f64], &[f64], &[f32], ArmShape, &mut [f64], &mut [f64]);

fn form_of(a: &[f64], b: &[f64], s: ArmShape) -> Vec<f64> {
  let mut f = vec![f64::NAN; s.arms * serving_form::arm_len(s.d)];
  serving_form::build(a, b, s, &mut f);
  f
}

fn stats_impls() -> Vec<(&'static str, StatsFn)> {
  let mut v: Vec<(&'static str, StatsFn)> = vec![
    ("scalar", linear::arm_stats_scalar),
    ("dispatch", linear::arm_stats),
    ("serving form, scalar", |a, b, x, s, m, w| serving_form::stats_scalar(&form_of(a, b, s), x, s, m, w)),
    ("serving form, dispatch", |a, b, x, s, m, w| serving_form::stats(&form_of(a, b, s), x, s, m, w)),
  ];
  #[cfg(target_arch = "x86_64")]
  if have_avx2() {
    // SAFETY: only listed when the CPU has AVX2 and FMA.
    v.push(("avx2", |a, b, x, s, m, w| unsafe { super::linear_avx2::arm_stats(a, b, x, s, m, w) }));
  }
  v
}

#[test]
fn arm_stats_equal_linucb_scores_for_every_block_size() {
  let mut rng = Xoshiro256::new(11);
  // Sizes cover each AVX2 block (32, 16, 8, 4 columns) and every tail of 0..3 columns.
  for &d in &[1usize, 2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 31, 32, 33, 47, 63, 100, 129] {
    for &(arms, rows) in &[(1usize, 1usize), (3, 2), (5, 5)] {
      let mut a_inv = Vec::with_capacity(arms * d * d);
      for _ in 0..arms {
        let lambda = 0.5 + rng.next_f64();
        a_inv.extend(gauss_jordan(&random_spd(&mut rng, d, 2 * d, lambda), d));
      }
      let b = uniform(&mut rng, arms * d, 3.0);
      let x = uniform_f32(&mut rng, rows * d, 2.0);
      for (name, f) in stats_impls() {
        let (mut means, mut widths) = (vec![0.0; rows * arms], vec![0.0; rows * arms]);
        f(&a_inv, &b, &x, ArmShape { arms, d }, &mut means, &mut widths);
        for r in 0..rows {
          let xr: Vec<f64> = x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
          let (mut s0, mut s1, mut scratch) = (vec![0.0; arms], vec![0.0; arms], vec![0.0; d]);
          linucb::scores(&a_inv, &b, &xr, 0.0, &mut s0, &mut scratch);
          linucb::scores(&a_inv, &b, &xr, 1.0, &mut s1, &mut scratch);
          for k in 0..arms {
            let what = format!("{name} d={d} K={arms} row {r} arm {k}");
            assert_close(means[r * arms + k], s0[k], 1e-10, &format!("{what} mean"));
            // The serving form's triangle is f32 (serving_form.rs): its widths to 1e-5, the rest exact to 1e-10.
            let tol = if name.starts_with("serving form") { 1e-5 } else { 1e-10 };
            assert_close(means[r * arms + k] + widths[r * arms + k], s1[k], tol, &format!("{what} mean + width"));
            assert!(widths[r * arms + k] > 0.0, "{what}: an SPD A^-1 has a positive width");
          }
        }
      }
    }
  }
}

#[test]
fn serving_form_holds_a_inv_upper_triangle_in_whole_aligned_f32_vectors() {
  // Per arm: theta and the diagonal (d rounded up to 4 f64 each), then the triangle in f32, two
  // to a slot, row i from column i rounded down to 8 to d rounded up to 8: d = 5 -> 8 + 8 +
  // 5 x 8 / 2; d = 4 -> 4 + 4 + 4 x 8 / 2; d = 9 -> 12 + 12 + (8 x 16 + 8) / 2.
  assert_eq!(serving_form::arm_len(5), 8 + 8 + 20);
  assert_eq!(serving_form::arm_len(4), 4 + 4 + 16);
  assert_eq!(serving_form::arm_len(9), 12 + 12 + 68);
  for d in [1usize, 7, 32, 100, 129] {
    let len = serving_form::arm_len(d);
    let bound = d * d / 4 + 2 * serving_form::padded(d) + 8 * d;
    assert!(len <= bound, "d={d}: {len} f64 slots is more than a quarter of A^-1 and a few vectors ({bound})");
  }
  // Entries left of the diagonal and past d are zero; the others are A^-1's upper triangle, as f32.
  let d = 10;
  let a: Vec<f64> = (0..d * d).map(|v| 1.0 + ((v / d) * (v % d)) as f64 / 3.0).collect(); // symmetric
  let f = form_of(&a, &vec![0.0; d], ArmShape { arms: 1, d });
  let dp = serving_form::padded(d);
  assert_eq!(&f[dp..dp + d], &(0..d).map(|i| a[i * d + i]).collect::<Vec<_>>()[..], "the diagonal, in f64");
  let rows = serving_form::tri(&f, dp);
  let mut at = 0;
  for i in 0..d {
    let start = i & !7;
    for j in start..16 {
      let want = if j > i && j < d { a[i * d + j] as f32 } else { 0.0 };
      assert_eq!(rows[at + j - start], want, "row {i} column {j}");
    }
    at += 16 - start;
  }
  assert!(rows[at..].iter().all(|&v| v == 0.0), "the last slot's spare half is zero");
  assert_eq!(at.div_ceil(2), rows.len() / 2);
}

/// x' A^-1 x from the serving form against the f64 state: each triangle row's dot product is
/// f32 (the rest f64), so within 1e-6 of the width's scale, with every block size and tail.
#[test]
fn serving_form_widths_are_within_f32_rounding_of_the_state() {
  let mut rng = Xoshiro256::new(23);
  for &d in &[1usize, 3, 4, 5, 8, 9, 15, 16, 17, 31, 33, 100, 129] {
    let arms = 3;
    let mut a_inv = Vec::with_capacity(arms * d * d);
    for _ in 0..arms {
      let lambda = 0.5 + rng.next_f64();
      a_inv.extend(gauss_jordan(&random_spd(&mut rng, d, 2 * d, lambda), d));
    }
    let b = uniform(&mut rng, arms * d, 3.0);
    let x = uniform_f32(&mut rng, 2 * d, 2.0);
    let (mut m0, mut w0) = (vec![0.0; 2 * arms], vec![0.0; 2 * arms]);
    linear::arm_stats_scalar(&a_inv, &b, &x, ArmShape { arms, d }, &mut m0, &mut w0);
    let form = form_of(&a_inv, &b, ArmShape { arms, d });
    type FormStats = fn(&[f64], &[f32], ArmShape, &mut [f64], &mut [f64]);
    let impls: [(&str, FormStats); 2] = [("scalar", serving_form::stats_scalar), ("dispatch", serving_form::stats)];
    for (name, f) in impls {
      let (mut m, mut w) = (vec![0.0; 2 * arms], vec![0.0; 2 * arms]);
      f(&form, &x, ArmShape { arms, d }, &mut m, &mut w);
      for i in 0..2 * arms {
        // The scale of x' A^-1 x's terms: |x|' |A^-1| |x| for this row and arm.
        let (r, k) = (i / arms, i % arms);
        let xr = &x[r * d..(r + 1) * d];
        let ak = &a_inv[k * d * d..(k + 1) * d * d];
        let scale: f64 = (0..d).map(|p| (0..d).map(|q| (xr[p] as f64 * ak[p * d + q] * xr[q] as f64).abs()).sum::<f64>()).sum();
        assert_close(m[i], m0[i], 1e-12, &format!("{name} d={d} row {r} arm {k}: the mean, in f64 as from the state"));
        let (v, v0) = (w[i] * w[i], w0[i] * w0[i]);
        assert!((v - v0).abs() <= 1e-6 * scale, "{name} d={d} row {r} arm {k}: variance {v} against {v0} (scale {scale})");
      }
    }
  }
}

#[test]
fn arm_stats_clamp_a_rounding_negative_variance_to_zero_width() {
  // A^-1 = 0 gives a variance of exactly 0 (and a mean of 0) on every path.
  let d = 9;
  let x: Vec<f32> = (0..d).map(|i| i as f32 - 4.0).collect();
  for (name, f) in stats_impls() {
    let (mut m, mut w) = (vec![1.0], vec![1.0]);
    f(&vec![0.0; d * d], &vec![1.0; d], &x, ArmShape { arms: 1, d }, &mut m, &mut w);
    assert_eq!((m[0], w[0]), (0.0, 0.0), "{name}");
  }
}

/// An implementation of `learn`.
type LearnFn = fn(LearnState, Events, usize) -> usize;

/// A LinUCB state of K arms with A = lambda I.
struct State {
  a_inv: Vec<f64>,
  a: Vec<f64>,
  b: Vec<f64>,
}

impl State {
  fn new(arms: usize, d: usize, lambda: f64) -> Self {
    let (mut a_inv, mut a) = (vec![0.0; arms * d * d], vec![0.0; arms * d * d]);
    for k in 0..arms {
      for i in 0..d {
        a[k * d * d + i * d + i] = lambda;
        a_inv[k * d * d + i * d + i] = 1.0 / lambda;
      }
    }
    State { a_inv, a, b: vec![0.0; arms * d] }
  }

  fn learn(&mut self, f: LearnFn, arms: &[u32], x: &[f32], rewards: &[f64], d: usize) -> usize {
    f(LearnState { a_inv: &mut self.a_inv, a: &mut self.a, b: &mut self.b }, Events { arms, x, rewards }, d)
  }
}

#[test]
fn learn_equals_repeated_sherman_morrison_and_a_direct_inverse() {
  let mut rng = Xoshiro256::new(5);
  for &d in &[1usize, 3, 4, 8, 13, 32, 37] {
    let (arms, n, lambda) = (3usize, 300usize, 1.5);
    let ev_arms: Vec<u32> = (0..n).map(|_| (rng.next_u64() % arms as u64) as u32).collect();
    let x = uniform_f32(&mut rng, n * d, 1.0);
    let rewards = uniform(&mut rng, n, 2.0);
    // Reference: the existing one-event f64 update, and A and b summed directly.
    let mut want = State::new(arms, d, lambda);
    let mut scratch = vec![0.0; d];
    for i in 0..n {
      let k = ev_arms[i] as usize;
      let xi: Vec<f64> = x[i * d..(i + 1) * d].iter().map(|&v| v as f64).collect();
      let (ai, bk) = (&mut want.a_inv[k * d * d..(k + 1) * d * d], &mut want.b[k * d..(k + 1) * d]);
      assert!(linucb::sherman_morrison(ai, bk, &xi, rewards[i], &mut scratch));
      for p in 0..d {
        for q in 0..d {
          want.a[k * d * d + p * d + q] += xi[p] * xi[q];
        }
      }
    }
    let impls: [(&str, LearnFn); 2] = [("dispatch", linear::learn), ("scalar", linear::learn_scalar)];
    for (name, f) in impls {
      let mut got = State::new(arms, d, lambda);
      // Two batches: state carries over between calls.
      let h = n / 2;
      let applied = got.learn(f, &ev_arms[..h], &x[..h * d], &rewards[..h], d)
        + got.learn(f, &ev_arms[h..], &x[h * d..], &rewards[h..], d);
      assert_eq!(applied, n, "{name} d={d}: every event applies");
      for k in 0..arms {
        let direct = gauss_jordan(&want.a[k * d * d..(k + 1) * d * d], d);
        for e in 0..d * d {
          let what = format!("{name} d={d} arm {k} entry {e}");
          assert_close(got.a_inv[k * d * d + e], want.a_inv[k * d * d + e], 1e-9, &format!("{what} vs Sherman-Morrison"));
          assert_close(got.a_inv[k * d * d + e], direct[e], 1e-9, &format!("{what} vs direct inverse"));
          assert_close(got.a[k * d * d + e], want.a[k * d * d + e], 1e-12, &format!("{what} A"));
        }
        // Written as s s', the update keeps A^-1 exactly symmetric.
        for p in 0..d {
          for q in 0..p {
            assert_eq!(got.a_inv[k * d * d + p * d + q], got.a_inv[k * d * d + q * d + p], "{name} d={d} symmetric");
          }
        }
      }
      for (e, (&g, &w)) in got.b.iter().zip(&want.b).enumerate() {
        assert_close(g, w, 1e-12, &format!("{name} d={d} b[{e}]"));
      }
    }
  }
}

#[test]
fn learn_skips_singular_and_overflowing_events_on_all_three_arrays() {
  let d = 2;
  let mut s = State::new(2, d, 1.0);
  // Arm 1's A^-1 = -I: 1 + x' A^-1 x = 1 - |x|^2 <= 0 for |x| >= 1, a singular update.
  s.a_inv[4] = -1.0;
  s.a_inv[7] = -1.0;
  let before = (s.a_inv.clone(), s.a.clone(), s.b.clone());
  let x = [1.0f32, 1.0, 3.0, 0.0, 0.5, 0.5];
  // Event 0: arm 1, singular. Event 1: arm 0, reward * x overflows. Event 2: arm 0, applies.
  let applied = s.learn(linear::learn, &[1, 0, 0], &x, &[1.0, 1e308, 2.0], d);
  assert_eq!(applied, 1);
  assert_eq!(&s.a_inv[4..], &before.0[4..], "arm 1 A^-1 untouched");
  assert_eq!(&s.a[4..], &before.1[4..], "arm 1 A untouched");
  assert_eq!(&s.b[2..], &before.2[2..], "arm 1 b untouched");
  // Arm 0 holds exactly event 2: A = I + x x' with x = (0.5, 0.5), b = 2 x.
  assert_eq!(&s.a[..4], &[1.25, 0.25, 0.25, 1.25]);
  assert_eq!(&s.b[..2], &[1.0, 1.0]);
  let direct = gauss_jordan(&s.a[..4], d);
  for e in 0..4 {
    assert_close(s.a_inv[e], direct[e], 1e-12, "arm 0 A^-1");
  }
}

#[test]
fn invert_spd_times_a_is_the_identity() {
  let mut rng = Xoshiro256::new(9);
  for &d in &[1usize, 2, 5, 16, 33, 100] {
    let lambda = 0.1 + rng.next_f64();
    let a = random_spd(&mut rng, d, d / 2, lambda);
    let mut inv = vec![0.0; d * d];
    assert!(linear::invert_spd(&a, d, &mut inv), "d={d}");
    for i in 0..d {
      for j in 0..d {
        let v: f64 = (0..d).map(|k| inv[i * d + k] * a[k * d + j]).sum();
        let want = if i == j { 1.0 } else { 0.0 };
        assert!((v - want).abs() < 1e-9, "d={d} (A^-1 A)[{i}][{j}] = {v}");
        assert_eq!(inv[i * d + j], inv[j * d + i], "d={d}: the inverse is exactly symmetric");
      }
    }
    let gj = gauss_jordan(&a, d);
    for e in 0..d * d {
      assert_close(inv[e], gj[e], 1e-9, &format!("d={d} entry {e} vs Gauss-Jordan"));
    }
  }
}

#[test]
fn invert_spd_refuses_what_is_not_spd_and_leaves_out_untouched() {
  let cases: [(&str, Vec<f64>); 4] = [
    ("indefinite", vec![1.0, 2.0, 2.0, 1.0]),
    ("singular", vec![1.0, 1.0, 1.0, 1.0]),
    ("zero", vec![0.0; 4]),
    ("asymmetric", vec![2.0, 0.0, 1.0, 2.0]),
  ];
  for (name, a) in cases {
    let mut out = vec![7.0; 4];
    assert!(!linear::invert_spd(&a, 2, &mut out), "{name}");
    assert_eq!(out, vec![7.0; 4], "{name}: out untouched");
  }
}

/// Standard normal CDF by composite Simpson integration of the density from 0 (error far below
/// the Monte Carlo tolerances used here).
fn phi(t: f64) -> f64 {
  let n = 20_000;
  let h = t / n as f64;
  let pdf = |z: f64| (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
  let mut s = pdf(0.0) + pdf(t);
  for i in 1..n {
    s += pdf(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
  }
  0.5 + s * h / 3.0
}

/// |estimate - p| within 5 standard errors of `draws` Bernoulli(p) trials.
fn assert_mc(estimate: f64, p: f64, draws: usize, what: &str) {
  let se = (p * (1.0 - p) / draws as f64).sqrt();
  assert!((estimate - p).abs() <= 5.0 * se, "{what}: estimated {estimate}, exact {p} (5 se = {})", 5.0 * se);
}

#[test]
fn thompson_normal_probabilities_match_phi_for_two_arms() {
  let draws = 200_000;
  for &(m1, m2, s1, s2) in &[(0.3, 0.0, 1.0, 0.5), (1.0, 1.2, 0.1, 0.3), (0.0, 0.0, 2.0, 0.5)] {
    let mut probs = [0.0; 2];
    thompson::thompson_normal(&mut Xoshiro256::new(21), &[m1, m2], &[s1, s2], draws, Some(&mut probs));
    let p = phi((m1 - m2) / (s1 * s1 + s2 * s2).sqrt());
    assert_mc(probs[0], p, draws, &format!("P(N({m1},{s1}^2) > N({m2},{s2}^2))"));
    assert_close(probs[0] + probs[1], 1.0, 1e-12, "probabilities sum to 1");
  }
}

#[test]
fn thompson_normal_point_masses_pick_the_largest_with_ties_to_the_lowest_index() {
  let mut probs = [0.5; 3];
  let pick = thompson::thompson_normal(&mut Xoshiro256::new(1), &[1.0, 3.0, 3.0], &[0.0; 3], 50, Some(&mut probs));
  assert_eq!(pick, 1);
  assert_eq!(probs, [0.0, 1.0, 0.0]);
  // draws = 0: the pick only, probs left as they were.
  let mut kept = [0.5; 3];
  assert_eq!(thompson::thompson_normal(&mut Xoshiro256::new(1), &[1.0, 3.0, 2.0], &[0.0; 3], 0, Some(&mut kept)), 1);
  assert_eq!(kept, [0.5; 3]);
}

#[test]
fn thompson_equal_arms_are_each_picked_with_probability_one_over_k() {
  let draws = 100_000;
  for k in [2usize, 5, 10] {
    let mut probs = vec![0.0; k];
    thompson::thompson_normal(&mut Xoshiro256::new(3), &vec![0.2; k], &vec![1.5; k], draws, Some(&mut probs));
    for (i, &p) in probs.iter().enumerate() {
      assert_mc(p, 1.0 / k as f64, draws, &format!("normal K={k} arm {i}"));
    }
    // Both Beta paths: shapes >= 1 (direct ratio) and < 1 (through logarithms).
    for (a, b) in [(2.0, 3.0), (0.5, 0.3)] {
      let mut probs = vec![0.0; k];
      thompson::thompson_beta(&mut Xoshiro256::new(4), &vec![a; k], &vec![b; k], draws, Some(&mut probs));
      for (i, &p) in probs.iter().enumerate() {
        assert_mc(p, 1.0 / k as f64, draws, &format!("Beta({a},{b}) K={k} arm {i}"));
      }
      assert_close(probs.iter().sum(), 1.0, 1e-12, "probabilities sum to 1");
    }
  }
}

#[test]
fn thompson_picks_are_distributed_like_the_estimated_probabilities() {
  // The first-round pick over many seeds is the same distribution the probabilities estimate.
  let (alphas, betas) = ([3.0, 2.0, 1.0], [2.0, 3.0, 1.0]);
  let mut probs = [0.0; 3];
  let draws = 200_000;
  thompson::thompson_beta(&mut Xoshiro256::new(8), &alphas, &betas, draws, Some(&mut probs));
  let seeds = 50_000;
  let mut counts = [0usize; 3];
  for seed in 0..seeds {
    counts[thompson::thompson_beta(&mut Xoshiro256::new(1000 + seed), &alphas, &betas, 0, None)] += 1;
  }
  for k in 0..3 {
    assert_mc(counts[k] as f64 / seeds as f64, probs[k], seeds as usize, &format!("arm {k}"));
  }
}
