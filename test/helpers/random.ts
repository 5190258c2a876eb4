/** Deterministic test data (mulberry32), so a failing case can be replayed from its seed. */
import { mulberry32 } from '../../src/random.js';

export { mulberry32 };

/** Float32Array of n values uniform in [-scale, scale]. */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

export function randomF64(n: number, seed: number, scale = 1): Float64Array {
  const r = mulberry32(seed);
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}
