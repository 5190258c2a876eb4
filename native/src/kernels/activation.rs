//! Output activations applied in place after the linear part.

/// Activation applied to each output row. The numeric values are the JS-facing enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
  None = 0,
  Sigmoid = 1,
  Softmax = 2,
}

impl Activation {
  pub fn from_u32(v: u32) -> Option<Activation> {
    match v {
      0 => Some(Activation::None),
      1 => Some(Activation::Sigmoid),
      2 => Some(Activation::Softmax),
      _ => None,
    }
  }
}

/// Numerically stable logistic function (no overflow of exp for large |z|).
#[inline]
pub fn sigmoid(z: f32) -> f32 {
  if z >= 0.0 {
    1.0 / (1.0 + (-z).exp())
  } else {
    let e = z.exp();
    e / (1.0 + e)
  }
}

/// Applies `act` to `out`, viewed as rows of `width` values.
pub fn apply(act: Activation, out: &mut [f32], width: usize) {
  match act {
    Activation::None => {}
    Activation::Sigmoid => out.iter_mut().for_each(|v| *v = sigmoid(*v)),
    Activation::Softmax => {
      if width == 0 {
        return;
      }
      for row in out.chunks_exact_mut(width) {
        // Subtract the row maximum so exp never overflows.
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for v in row.iter_mut() {
          *v = (*v - max).exp();
          sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
      }
    }
  }
}
