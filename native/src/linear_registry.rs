//! Linear/logistic models kept on the native side, addressed by a small integer handle.
//!
//! Crossing N-API costs roughly 0.1 us per typed-array argument, more than a 100-feature dot
//! product, so the hot call passes only the input and output arrays: weights and bias were
//! copied in once, when the model loaded. Handles live in a thread-local slab because every
//! worker thread loads its own copy of a model; a handle used on another thread is simply not
//! found (an error status, never undefined behaviour).

use crate::kernels::{self, Activation, GemvShape};
use std::cell::RefCell;

pub struct LinearModel {
  pub w: Vec<f32>,
  pub bias: Vec<f32>,
  pub cols: usize,
  pub outputs: usize,
  pub act: Activation,
}

thread_local! {
  static SLAB: RefCell<Vec<Option<LinearModel>>> = const { RefCell::new(Vec::new()) };
}

/// Stores a model and returns its handle (index + 1, so 0 is never a valid handle).
pub fn insert(m: LinearModel) -> u32 {
  SLAB.with(|slab| {
    let mut slab = slab.borrow_mut();
    if let Some(i) = slab.iter().position(Option::is_none) {
      slab[i] = Some(m);
      (i + 1) as u32
    } else {
      slab.push(Some(m));
      slab.len() as u32
    }
  })
}

/// Frees a handle; false if it was not live on this thread.
pub fn remove(handle: u32) -> bool {
  SLAB.with(|slab| {
    let mut slab = slab.borrow_mut();
    match (handle as usize).checked_sub(1).and_then(|i| slab.get_mut(i)) {
      Some(slot @ Some(_)) => {
        *slot = None;
        true
      }
      _ => false,
    }
  })
}

/// Status codes of [`run`] (mirrored in src/native.ts).
pub const OK: u32 = 0;
pub const BAD_HANDLE: u32 = 1;
pub const BAD_ROWS: u32 = 2;
pub const BAD_INPUT_LENGTH: u32 = 3;
pub const BAD_OUTPUT_LENGTH: u32 = 4;
pub const ALIASED: u32 = 5;

/// Runs model `handle` on `rows` rows of `x` into `out`, returning a status code.
pub fn run(handle: u32, x: &[f32], rows: f64, out: &mut [f32]) -> u32 {
  if !(rows.is_finite() && rows >= 0.0 && rows.fract() == 0.0 && rows <= u32::MAX as f64) {
    return BAD_ROWS;
  }
  let rows = rows as usize;
  SLAB.with(|slab| {
    let slab = slab.borrow();
    let Some(Some(m)) = (handle as usize).checked_sub(1).and_then(|i| slab.get(i)) else {
      return BAD_HANDLE;
    };
    if rows.checked_mul(m.cols) != Some(x.len()) {
      return BAD_INPUT_LENGTH;
    }
    if rows.checked_mul(m.outputs) != Some(out.len()) {
      return BAD_OUTPUT_LENGTH;
    }
    let shape = GemvShape { rows, cols: m.cols, outputs: m.outputs };
    kernels::gemv(x, &m.w, &m.bias, shape, m.act, out);
    OK
  })
}
