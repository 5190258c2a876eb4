//! Bandit math: a seeded PRNG, Gamma/Beta sampling, Thompson-sampling arm selection and LinUCB.

pub mod linucb;
pub mod rng;
pub mod sampling;
