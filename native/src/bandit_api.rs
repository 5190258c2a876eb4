//! The N-API surface of the linear-bandit kernels (`bandit::linear`) and the argument checks of
//! the Thompson-sampling methods on `Rng` (lib.rs). Every size, index and finite-ness is checked
//! before anything is written, so a refused call leaves its arrays as they were.

use crate::bandit::linear::{self, ArmShape, Events, LearnState};
use crate::bandit::serving_form;
use crate::errors::{dim, disjoint, expect_len, invalid, shape, Code};
use crate::kernels::finite::{first_non_finite_f32, first_non_finite_f64};
use napi::bindgen_prelude::{Float32ArraySlice, Float64ArraySlice, Uint32ArraySlice};
use napi_derive::napi;

type Result<T> = napi::Result<T, Code>;

fn all_finite_f32(name: &str, x: &[f32]) -> Result<()> {
  match first_non_finite_f32(x) {
    Some(i) => Err(invalid(format!("{name}[{i}] is {}, expected a finite number", x[i]))),
    None => Ok(()),
  }
}

fn all_finite_f64(name: &str, x: &[f64]) -> Result<()> {
  match first_non_finite_f64(x) {
    Some(i) => Err(invalid(format!("{name}[{i}] is {}, expected a finite number", x[i]))),
    None => Ok(()),
  }
}

/// `n / by` when it divides exactly and is at least 1.
fn exact_quotient(what: &str, n: usize, by: usize) -> Result<usize> {
  if by == 0 || n == 0 || !n.is_multiple_of(by) {
    return Err(shape(format!("{what}: {n} is not a positive multiple of {by}")));
  }
  Ok(n / by)
}

/// Infers K and d from `means` and `b` and checks every other length of an arm-stats call.
fn check_arm_stats(a_inv: &[f64], b: &[f64], x: &[f32], rows: f64, means: &[f64], widths: &[f64]) -> Result<ArmShape> {
  let rows = dim("rows", rows)?;
  if rows == 0 {
    return Err(invalid("rows must be at least 1 (K is inferred from means.length / rows)"));
  }
  let arms = exact_quotient("means.length / rows (K)", means.len(), rows)?;
  let d = exact_quotient("b.length / K (d)", b.len(), arms)?;
  let dd = d.checked_mul(d).and_then(|v| v.checked_mul(arms)).ok_or_else(|| invalid("K * d * d overflows"))?;
  expect_len("aInv", a_inv.len(), dd)?;
  expect_len("x", x.len(), rows * d)?;
  expect_len("widths", widths.len(), means.len())?;
  all_finite_f32("x", x)?;
  for (name, out) in [("means", means), ("widths", widths)] {
    disjoint(name, out, "aInv", a_inv)?;
    disjoint(name, out, "b", b)?;
    disjoint(name, out, "x", x)?;
  }
  disjoint("means", means, "widths", widths)?;
  Ok(ArmShape { arms, d })
}

/// Per row r and arm k of a linear bandit: `means[r*K + k] = x_r . (A_k^-1 b_k)` and
/// `widths[r*K + k] = sqrt(max(0, x_r' A_k^-1 x_r))`. `aInv` is K*d*d (symmetric per arm,
/// row-major), `b` K*d, `x` rows*d (FP32), `means` and `widths` rows*K; K = means.length / rows
/// and d = b.length / K. SIMD when available.
#[napi(catch_unwind)]
pub fn linear_arm_stats(
  a_inv: Float64ArraySlice,
  b: Float64ArraySlice,
  x: Float32ArraySlice,
  rows: f64,
  mut means: Float64ArraySlice,
  mut widths: Float64ArraySlice,
) -> Result<()> {
  let s = check_arm_stats(&a_inv, &b, &x, rows, &means, &widths)?;
  // SAFETY: `means` and `widths` overlap neither each other nor any input (checked), and are the
  // only mutable views of their memory during this call.
  let (m, w) = unsafe { (means.as_mut(), widths.as_mut()) };
  linear::arm_stats(&a_inv, &b, &x, s, m, w);
  Ok(())
}

/// Scalar reference of [`linear_arm_stats`] (same arguments), for tests and benchmarks.
#[napi(catch_unwind)]
pub fn linear_arm_stats_scalar(
  a_inv: Float64ArraySlice,
  b: Float64ArraySlice,
  x: Float32ArraySlice,
  rows: f64,
  mut means: Float64ArraySlice,
  mut widths: Float64ArraySlice,
) -> Result<()> {
  let s = check_arm_stats(&a_inv, &b, &x, rows, &means, &widths)?;
  // SAFETY: as in `linear_arm_stats`.
  let (m, w) = unsafe { (means.as_mut(), widths.as_mut()) };
  linear::arm_stats_scalar(&a_inv, &b, &x, s, m, w);
  Ok(())
}

/// f64 values of a linear bandit's serving form (`linearServingForm`) for K arms of d features.
#[napi(catch_unwind)]
pub fn linear_serving_form_length(arms: f64, d: f64) -> Result<f64> {
  let (arms, d) = (dim("arms", arms)?, dim("d", d)?);
  if arms == 0 || d == 0 {
    return Err(invalid("arms and d must be at least 1"));
  }
  Ok((arms * serving_form::arm_len(d)) as f64)
}

/// Writes the serving form of a linear bandit's state into `out`: per arm, A^-1 b, A^-1's diagonal
/// and its upper triangle in f32 (bandit/serving_form.rs), what `linearServingStats` reads. `aInv` is K*d*d
/// (symmetric per arm), `b` K*d, `out` linearServingFormLength(K, d); d = aInv.length /
/// b.length. A non-finite state throws (a published state never is).
#[napi(catch_unwind)]
pub fn linear_serving_form(a_inv: Float64ArraySlice, b: Float64ArraySlice, mut out: Float64ArraySlice) -> Result<()> {
  let d = exact_quotient("aInv.length / b.length (d)", a_inv.len(), b.len())?;
  let arms = exact_quotient("b.length / d (K)", b.len(), d)?;
  expect_len("aInv", a_inv.len(), arms * d * d)?;
  expect_len("out", out.len(), arms * serving_form::arm_len(d))?;
  all_finite_f64("aInv", &a_inv)?;
  all_finite_f64("b", &b)?;
  disjoint("out", &out, "aInv", &a_inv)?;
  disjoint("out", &out, "b", &b)?;
  // SAFETY: `out` overlaps no input (checked) and is the only mutable view of its memory.
  serving_form::build(&a_inv, &b, ArmShape { arms, d }, unsafe { out.as_mut() });
  Ok(())
}

/// Checks a serving-stats call; K = means.length / rows, d = x.length / rows.
fn check_serving_stats(form: &[f64], x: &[f32], rows: f64, means: &[f64], widths: &[f64]) -> Result<ArmShape> {
  let rows = dim("rows", rows)?;
  if rows == 0 {
    return Err(invalid("rows must be at least 1 (K is inferred from means.length / rows)"));
  }
  let arms = exact_quotient("means.length / rows (K)", means.len(), rows)?;
  let d = exact_quotient("x.length / rows (d)", x.len(), rows)?;
  expect_len("form", form.len(), arms * serving_form::arm_len(d))?;
  expect_len("widths", widths.len(), means.len())?;
  all_finite_f32("x", x)?;
  for (name, out) in [("means", means), ("widths", widths)] {
    disjoint(name, out, "form", form)?;
    disjoint(name, out, "x", x)?;
  }
  disjoint("means", means, "widths", widths)?;
  Ok(ArmShape { arms, d })
}

/// `linearArmStats` from a serving form (`linearServingForm`): the same means up to rounding,
/// widths to f32 rounding, reading under a third of the bytes. `form` is linearServingFormLength(K, d), `x` rows*d (FP32),
/// `means` and `widths` rows*K. SIMD when available.
#[napi(catch_unwind)]
pub fn linear_serving_stats(form: Float64ArraySlice, x: Float32ArraySlice, rows: f64, mut means: Float64ArraySlice, mut widths: Float64ArraySlice) -> Result<()> {
  let s = check_serving_stats(&form, &x, rows, &means, &widths)?;
  // SAFETY: as in `linear_arm_stats`.
  let (m, w) = unsafe { (means.as_mut(), widths.as_mut()) };
  serving_form::stats(&form, &x, s, m, w);
  Ok(())
}

/// Scalar reference of [`linear_serving_stats`] (same arguments), for tests and benchmarks.
#[napi(catch_unwind)]
pub fn linear_serving_stats_scalar(form: Float64ArraySlice, x: Float32ArraySlice, rows: f64, mut means: Float64ArraySlice, mut widths: Float64ArraySlice) -> Result<()> {
  let s = check_serving_stats(&form, &x, rows, &means, &widths)?;
  // SAFETY: as in `linear_arm_stats`.
  let (m, w) = unsafe { (means.as_mut(), widths.as_mut()) };
  serving_form::stats_scalar(&form, &x, s, m, w);
  Ok(())
}

/// Checks a learning batch; returns d.
fn check_learn(a_inv: &[f64], a: &[f64], b: &[f64], arms: &[u32], x: &[f32], rewards: &[f64]) -> Result<usize> {
  // aInv is K*d*d and b is K*d, so d = aInv.length / b.length and K = b.length / d.
  let d = exact_quotient("aInv.length / b.length (d)", a_inv.len(), b.len())?;
  let k = exact_quotient("b.length / d (K)", b.len(), d)?;
  expect_len("aInv", a_inv.len(), k * d * d)?;
  expect_len("a", a.len(), a_inv.len())?;
  let n = arms.len();
  expect_len("rewards", rewards.len(), n)?;
  expect_len("x", x.len(), n.checked_mul(d).ok_or_else(|| invalid("events * d overflows"))?)?;
  if let Some(i) = arms.iter().position(|&arm| arm as usize >= k) {
    return Err(invalid(format!("arms[{i}] is {}, expected an arm below K = {k}", arms[i])));
  }
  all_finite_f32("x", x)?;
  all_finite_f64("rewards", rewards)?;
  let outs: [(&str, &[f64]); 3] = [("aInv", a_inv), ("a", a), ("b", b)];
  for (i, (name, out)) in outs.iter().enumerate() {
    for (other, o) in &outs[i + 1..] {
      disjoint(name, out, other, o)?;
    }
    disjoint(name, out, "arms", arms)?;
    disjoint(name, out, "x", x)?;
    disjoint(name, out, "rewards", rewards)?;
  }
  Ok(d)
}

/// Applies a batch of n events to a LinUCB state in order: for event i, arm k = arms[i],
/// Sherman-Morrison on `aInv`'s A_k^-1 with x_i (row i of `x`, FP32), `a`'s A_k += x_i x_i', and
/// `b`'s b_k += rewards[i] x_i. `aInv` and `a` are K*d*d, `b` K*d, `arms` n, `x` n*d, `rewards` n.
/// Returns how many events were applied: an event whose update is singular or would write a
/// non-finite value is skipped, on all three arrays. An arm out of range, a non-finite x or
/// reward, or a size that does not fit refuses the whole batch before anything changes.
#[napi(catch_unwind)]
pub fn linucb_learn(
  mut a_inv: Float64ArraySlice,
  mut a: Float64ArraySlice,
  mut b: Float64ArraySlice,
  arms: Uint32ArraySlice,
  x: Float32ArraySlice,
  rewards: Float64ArraySlice,
) -> Result<u32> {
  let d = check_learn(&a_inv, &a, &b, &arms, &x, &rewards)?;
  // SAFETY: the three state arrays are pairwise disjoint and disjoint from the inputs (checked);
  // these are the only mutable views of their memory during this call.
  let state = unsafe { LearnState { a_inv: a_inv.as_mut(), a: a.as_mut(), b: b.as_mut() } };
  Ok(linear::learn(state, Events { arms: &arms, x: &x, rewards: &rewards }, d) as u32)
}

/// Writes the inverse of the symmetric positive-definite `a` (d*d, row-major) into `out` (d*d)
/// by Cholesky and returns true; returns false and leaves `out` untouched when `a` is not
/// symmetric (beyond rounding, 1e-9 relative) or not positive definite. A non-finite `a` throws.
#[napi(catch_unwind)]
pub fn invert_spd(a: Float64ArraySlice, mut out: Float64ArraySlice) -> Result<bool> {
  let d = (a.len() as f64).sqrt().round() as usize;
  if d == 0 || d * d != a.len() {
    return Err(shape(format!("a has length {}, expected d * d for some d >= 1", a.len())));
  }
  expect_len("out", out.len(), a.len())?;
  all_finite_f64("a", &a)?;
  disjoint("out", &out, "a", &a)?;
  // SAFETY: `out` does not overlap `a` and is the only mutable view of its memory.
  Ok(linear::invert_spd(&a, d, unsafe { out.as_mut() }))
}

/// Checks the arrays of a Thompson-sampling call: K >= 1 arms in both parameter arrays, `draws`
/// a non-negative integer, `probs` (when given) K long and disjoint from the inputs. Returns draws.
pub fn check_thompson(names: [&str; 2], first: &[f64], second: &[f64], draws: f64, probs: Option<&[f64]>) -> Result<usize> {
  if first.is_empty() {
    return Err(invalid(format!("{} must hold at least one arm", names[0])));
  }
  expect_len(names[1], second.len(), first.len())?;
  let draws = dim("draws", draws)?;
  if let Some(p) = probs {
    expect_len("probs", p.len(), first.len())?;
    disjoint("probs", p, names[0], first)?;
    disjoint("probs", p, names[1], second)?;
  }
  Ok(draws)
}

/// Checks that every value of `values` satisfies `ok` (described by `expected`).
pub fn check_each(name: &str, values: &[f64], expected: &str, ok: fn(f64) -> bool) -> Result<()> {
  match values.iter().position(|&v| !ok(v)) {
    Some(k) => Err(invalid(format!("{name}[{k}] is {}, expected {expected}", values[k]))),
    None => Ok(()),
  }
}
