//! xoshiro256++ seeded through SplitMix64: fast, small state, good statistical quality, and
//! reproducible for a given seed (tests and offline replays depend on that).

#[derive(Clone, Debug)]
pub struct Xoshiro256 {
  s: [u64; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
  *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
  let mut z = *state;
  z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
  z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
  z ^ (z >> 31)
}

impl Xoshiro256 {
  pub fn new(seed: u64) -> Self {
    let mut sm = seed;
    let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
    Xoshiro256 { s }
  }

  #[inline]
  pub fn next_u64(&mut self) -> u64 {
    let s = &mut self.s;
    let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
    let t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = s[3].rotate_left(45);
    result
  }

  /// Uniform in [0, 1) with 53 random bits.
  #[inline]
  pub fn next_f64(&mut self) -> f64 {
    (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
  }

  /// Uniform in the open interval (0, 1): safe to take the logarithm of.
  #[inline]
  pub fn next_open01(&mut self) -> f64 {
    ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
  }
}
