//! Error codes the addon throws. Each becomes the `code` property of the JS `Error`, so callers
//! can branch on it; the message says what was wrong with which argument.

use napi::Error;

/// Stable error codes of the native addon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
  /// An argument's value is out of its domain (NaN, negative size, unknown enum value...).
  InvalidArgument,
  /// Array lengths do not agree with the dimensions given.
  ShapeMismatch,
  /// An output array overlaps an input array; the kernels never work in place.
  AliasedArgument,
  /// The operating system refused a socket operation (bind: address in use, not available...).
  Socket,
  /// A shared-model token that was never issued or was forgotten.
  UnknownToken,
}

impl AsRef<str> for Code {
  fn as_ref(&self) -> &str {
    match self {
      Code::InvalidArgument => "ERR_NATIVE_INVALID_ARGUMENT",
      Code::ShapeMismatch => "ERR_NATIVE_SHAPE_MISMATCH",
      Code::AliasedArgument => "ERR_NATIVE_ALIASED_ARGUMENT",
      Code::Socket => "ERR_NATIVE_SOCKET",
      Code::UnknownToken => "ERR_NATIVE_UNKNOWN_TOKEN",
    }
  }
}

pub type NativeError = Error<Code>;
pub type NativeResult<T> = napi::Result<T, Code>;

pub fn invalid(msg: impl ToString) -> NativeError {
  Error::new(Code::InvalidArgument, msg)
}

pub fn shape(msg: impl ToString) -> NativeError {
  Error::new(Code::ShapeMismatch, msg)
}

pub fn aliased(msg: impl ToString) -> NativeError {
  Error::new(Code::AliasedArgument, msg)
}

/// Checks that `n` (a JS number) is a non-negative integer that fits a usize.
pub fn dim(name: &str, n: f64) -> NativeResult<usize> {
  if !n.is_finite() || n < 0.0 || n.fract() != 0.0 || n > (u32::MAX as f64) {
    return Err(invalid(format!("{name} must be a non-negative integer, got {n}")));
  }
  Ok(n as usize)
}

/// Checks that `n` is a finite number.
pub fn finite(name: &str, n: f64) -> NativeResult<f64> {
  if !n.is_finite() {
    return Err(invalid(format!("{name} must be a finite number, got {n}")));
  }
  Ok(n)
}

/// Checks `len == expected`, naming the argument in the error.
pub fn expect_len(name: &str, len: usize, expected: usize) -> NativeResult<()> {
  if len != expected {
    return Err(shape(format!("{name} has length {len}, expected {expected}")));
  }
  Ok(())
}

/// Refuses an output slice that shares memory with an input (the kernels read inputs while
/// writing outputs, so overlap would give wrong answers and violate Rust's aliasing rules).
pub fn disjoint<A, B>(out_name: &str, out: &[A], in_name: &str, input: &[B]) -> NativeResult<()> {
  let (o0, o1) = byte_range(out);
  let (i0, i1) = byte_range(input);
  if o0 < o1 && i0 < i1 && o0 < i1 && i0 < o1 {
    return Err(aliased(format!("{out_name} overlaps {in_name}")));
  }
  Ok(())
}

fn byte_range<T>(s: &[T]) -> (usize, usize) {
  let start = s.as_ptr() as usize;
  (start, start + std::mem::size_of_val(s))
}
