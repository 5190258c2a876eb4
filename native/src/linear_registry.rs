//! Linear/logistic models kept on the native side, addressed by a small integer handle.
//!
//! Crossing N-API costs roughly 0.1 us per typed-array argument, more than a 100-feature dot
//! product, so the hot call passes only the input and output arrays: weights and bias were
//! copied in once, when the model loaded. Handles live in a thread-local slab, so the hot call
//! takes no lock; a handle used on another thread is simply not found (an error status, never
//! undefined behaviour).
//!
//! Weights are read-only once loaded, so threads share them: each slab entry is an
//! `Arc<LinearModel>`. One thread *exports* a model of one of its handles into a process-wide
//! table under a token; other threads (I/O threads, pool workers) *import* the token and get
//! their own handle onto the same weights; the table's reference is dropped when the token is
//! *forgotten*. The weights are freed when the last handle (on any thread) or token goes. The
//! hot path only dereferences the slab's `Arc` (a plain pointer read): it never touches the
//! reference count, so sharing costs it nothing.

use crate::kernels::{self, Activation, GemvShape};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct LinearModel {
  pub w: Vec<f32>,
  pub bias: Vec<f32>,
  pub cols: usize,
  pub outputs: usize,
  pub act: Activation,
  /// Set by the first export; counted in [`shared_live`] until the model is dropped.
  exported: AtomicBool,
}

impl LinearModel {
  pub fn new(w: Vec<f32>, bias: Vec<f32>, cols: usize, outputs: usize, act: Activation) -> Self {
    LinearModel { w, bias, cols, outputs, act, exported: AtomicBool::new(false) }
  }
}

/// Models that were exported at least once and are not freed yet (a debug figure for tests).
static SHARED_LIVE: AtomicUsize = AtomicUsize::new(0);

impl Drop for LinearModel {
  fn drop(&mut self) {
    if *self.exported.get_mut() {
      SHARED_LIVE.fetch_sub(1, Ordering::Relaxed);
    }
  }
}

thread_local! {
  static SLAB: RefCell<Vec<Option<Arc<LinearModel>>>> = const { RefCell::new(Vec::new()) };
}

/// Exported models by token. Tokens count up from 1 and are not reused while the counter has
/// not wrapped (2^32 exports), so a forgotten token names nothing rather than another model.
struct Exports {
  next: u32,
  models: BTreeMap<u32, Arc<LinearModel>>,
}

static EXPORTS: Mutex<Exports> = Mutex::new(Exports { next: 1, models: BTreeMap::new() });

fn exports() -> MutexGuard<'static, Exports> {
  // No operation leaves the table half-changed, so a panic elsewhere while it was held does
  // not make it unusable.
  EXPORTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Stores a model on this thread and returns its handle (index + 1, so 0 is never a valid handle).
pub fn insert(m: LinearModel) -> u32 {
  insert_shared(Arc::new(m))
}

fn insert_shared(m: Arc<LinearModel>) -> u32 {
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

fn get(handle: u32) -> Option<Arc<LinearModel>> {
  SLAB.with(|slab| (handle as usize).checked_sub(1).and_then(|i| slab.borrow().get(i).cloned().flatten()))
}

/// Frees this thread's handle; false if it was not live on this thread. The weights themselves
/// are freed only if no other handle or token refers to them.
pub fn remove(handle: u32) -> bool {
  // Taken out first and dropped after the slab's borrow ends: dropping the model is then free
  // to do anything (it only updates a counter today).
  let taken = SLAB.with(|slab| {
    let mut slab = slab.borrow_mut();
    (handle as usize).checked_sub(1).and_then(|i| slab.get_mut(i)).and_then(Option::take)
  });
  taken.is_some()
}

/// Shares the model of `handle` (live on this thread) with other threads: returns a token for
/// [`import`], or None if the handle is not live here. Each call makes a new token.
pub fn export(handle: u32) -> Option<u32> {
  let m = get(handle)?;
  if !m.exported.swap(true, Ordering::Relaxed) {
    SHARED_LIVE.fetch_add(1, Ordering::Relaxed);
  }
  let mut ex = exports();
  let mut token = ex.next;
  while token == 0 || ex.models.contains_key(&token) {
    token = token.wrapping_add(1);
  }
  ex.next = token.wrapping_add(1);
  ex.models.insert(token, m);
  Some(token)
}

/// Why [`import`] refused a token.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportError {
  /// Never issued, or forgotten.
  UnknownToken,
  /// The model's (cols, outputs, activation) differ from what the caller expected.
  Mismatch { cols: usize, outputs: usize, act: Activation },
}

/// Gives this thread its own handle onto the model exported under `token`, after checking it
/// has the shape (and, if given, the activation) the caller expects. The token stays valid
/// (other threads may import it too) until [`forget`].
pub fn import(token: u32, cols: usize, outputs: usize, act: Option<Activation>) -> Result<u32, ImportError> {
  let m = exports().models.get(&token).cloned().ok_or(ImportError::UnknownToken)?;
  if m.cols != cols || m.outputs != outputs || act.is_some_and(|a| a != m.act) {
    return Err(ImportError::Mismatch { cols: m.cols, outputs: m.outputs, act: m.act });
  }
  Ok(insert_shared(m))
}

/// Drops the table's reference of `token`; false if it was unknown. Handles already imported
/// keep the model alive.
pub fn forget(token: u32) -> bool {
  let taken = exports().models.remove(&token);
  // Dropped here, after the lock is released.
  taken.is_some()
}

/// How many exported models are still alive (held by a handle or a token) in the process.
pub fn shared_live() -> usize {
  SHARED_LIVE.load(Ordering::Relaxed)
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
    // `m` is a reference to the slab's Arc: reading through it costs a pointer load, and the
    // reference count is not touched.
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

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::Weak;

  /// Tests run on parallel threads of one process, and `SHARED_LIVE` is process-wide: every test
  /// that exports takes this lock, so the one that reads the counter sees only its own models.
  static EXPORTING: Mutex<()> = Mutex::new(());

  fn exporting() -> MutexGuard<'static, ()> {
    EXPORTING.lock().unwrap_or_else(|p| p.into_inner())
  }

  const COLS: usize = 37;
  const OUTPUTS: usize = 3;

  fn model() -> LinearModel {
    let w = (0..COLS * OUTPUTS).map(|i| ((i % 11) as f32 - 5.0) / 7.0).collect();
    LinearModel::new(w, vec![0.5, -0.25, 0.0], COLS, OUTPUTS, Activation::Softmax)
  }

  fn input(rows: usize, seed: usize) -> Vec<f32> {
    (0..rows * COLS).map(|i| (((i * 31 + seed * 17) % 101) as f32 - 50.0) / 50.0).collect()
  }

  fn predict(handle: u32, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * OUTPUTS];
    assert_eq!(run(handle, x, rows as f64, &mut out), OK);
    out
  }

  fn weak(handle: u32) -> Weak<LinearModel> {
    Arc::downgrade(&get(handle).expect("live handle"))
  }

  #[test]
  fn threads_import_one_copy_and_compute_the_same() {
    let _g = exporting();
    let h = insert(model());
    let token = export(h).unwrap();
    let x = input(5, 1);
    let expected = predict(h, &x, 5);
    let original = Arc::as_ptr(&get(h).unwrap());
    let results: Vec<(Vec<f32>, usize)> = std::thread::scope(|s| {
      let joins: Vec<_> = (0..4)
        .map(|_| {
          s.spawn(|| {
            let mine = import(token, COLS, OUTPUTS, Some(Activation::Softmax)).unwrap();
            let out = predict(mine, &x, 5);
            // The same allocation, not a copy.
            let at = Arc::as_ptr(&get(mine).unwrap()) as usize;
            assert!(remove(mine));
            (out, at)
          })
        })
        .collect();
      joins.into_iter().map(|j| j.join().unwrap()).collect()
    });
    for (out, at) in results {
      assert_eq!(out, expected);
      assert_eq!(at, original as usize);
    }
    assert!(forget(token));
    assert!(remove(h));
  }

  #[test]
  fn forget_then_release_everywhere_frees_the_weights() {
    let _g = exporting();
    let h = insert(model());
    let w = weak(h);
    let token = export(h).unwrap();
    assert_eq!(w.strong_count(), 2, "the slab's and the table's");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    // A thread that imports and keeps its handle until told to go: its thread-local slab is
    // dropped when it ends.
    let other = std::thread::spawn(move || {
      let mine = import(token, COLS, OUTPUTS, Some(Activation::Softmax)).unwrap();
      ready_tx.send(()).unwrap();
      rx.recv().unwrap();
      predict(mine, &input(1, 2), 1)
    });
    ready_rx.recv().unwrap();
    assert_eq!(w.strong_count(), 3);
    assert!(forget(token));
    assert!(!forget(token), "a token is forgotten once");
    assert_eq!(import(token, COLS, OUTPUTS, Some(Activation::Softmax)), Err(ImportError::UnknownToken));
    assert!(remove(h));
    assert_eq!(w.strong_count(), 1, "the other thread's handle keeps the weights alive");
    assert_eq!(shared_live(), 1);
    tx.send(()).unwrap();
    assert_eq!(other.join().unwrap(), predict_once_fresh(&input(1, 2)));
    assert_eq!(w.strong_count(), 0, "freed when the last thread holding it ended");
    assert_eq!(shared_live(), 0);
  }

  /// The answer of a fresh, never-shared copy of the same model.
  fn predict_once_fresh(x: &[f32]) -> Vec<f32> {
    let h = insert(model());
    let out = predict(h, x, 1);
    remove(h);
    out
  }

  #[test]
  fn release_then_forget_also_frees() {
    let _g = exporting();
    let h = insert(model());
    let w = weak(h);
    let token = export(h).unwrap();
    let second = export(h).unwrap();
    assert_ne!(token, second, "each export makes a new token");
    assert!(remove(h));
    assert_eq!(w.strong_count(), 2, "both tokens hold it");
    let mine = import(second, COLS, OUTPUTS, Some(Activation::Softmax)).unwrap();
    assert!(forget(token) && forget(second));
    assert_eq!(w.strong_count(), 1);
    assert!(remove(mine));
    assert_eq!(w.strong_count(), 0);
  }

  #[test]
  fn unknown_tokens_and_dead_handles_are_refused() {
    let _g = exporting();
    assert_eq!(import(0, COLS, OUTPUTS, Some(Activation::Softmax)), Err(ImportError::UnknownToken));
    assert_eq!(import(u32::MAX, COLS, OUTPUTS, Some(Activation::Softmax)), Err(ImportError::UnknownToken));
    assert!(!forget(u32::MAX));
    assert_eq!(export(0), None);
    let h = insert(model());
    assert!(remove(h));
    assert_eq!(export(h), None, "a released handle cannot be exported");
    // Another thread's handle is not live here (this test's thread has none).
    let theirs = std::thread::spawn(|| {
      insert(model());
      insert(model())
    })
    .join()
    .unwrap();
    assert_eq!(export(theirs), None);
  }

  #[test]
  fn import_checks_the_description() {
    let _g = exporting();
    let h = insert(model());
    let token = export(h).unwrap();
    let expect = Err(ImportError::Mismatch { cols: COLS, outputs: OUTPUTS, act: Activation::Softmax });
    assert_eq!(import(token, COLS + 1, OUTPUTS, Some(Activation::Softmax)), expect);
    assert_eq!(import(token, COLS, 1, Some(Activation::Softmax)), expect);
    assert_eq!(import(token, COLS, OUTPUTS, Some(Activation::Sigmoid)), expect);
    // Without an expected activation, only the shape is checked.
    let mine = import(token, COLS, OUTPUTS, None).unwrap();
    assert!(remove(mine));
    assert!(forget(token));
    assert!(remove(h));
  }

  #[test]
  fn tokens_skip_zero_and_live_ones_when_the_counter_wraps() {
    let _g = exporting();
    let h = insert(model());
    let a = export(h).unwrap();
    exports().next = u32::MAX;
    let b = export(h).unwrap();
    assert_eq!(b, u32::MAX);
    let c = export(h).unwrap();
    assert_eq!(c, if a == 1 { 2 } else { 1 }, "0 is skipped, and so is a live token");
    // Back past every token issued before this test, so none is issued twice.
    exports().next = a.wrapping_add(1);
    for t in [a, b, c] {
      assert!(forget(t));
    }
    assert!(remove(h));
  }
}
