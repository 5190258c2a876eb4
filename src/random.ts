/**
 * mulberry32: a tiny seeded PRNG, so generated load, test data and the bandit simulations'
 * environments can be replayed from their seed. Not for anything that needs statistical quality
 * (the engine's bandits decide with the native xoshiro256++).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
