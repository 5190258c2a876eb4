//! Bandit math: a seeded PRNG, Gamma/Beta sampling, Thompson-sampling arm selection, LinUCB and
//! the linear-bandit state kernels (per-arm mean and width, batched learning, SPD inverse) and
//! the half-size form of a state that the request path reads.

pub mod linear;
#[cfg(target_arch = "x86_64")]
pub mod linear_avx2;
pub mod linucb;
pub mod rng;
pub mod sampling;
pub mod serving_form;
pub mod thompson;

#[cfg(test)]
mod tests;
