/**
 * Native SIMD kernels vs plain JavaScript: dot products of 64/100/256/1024 floats and a
 * 1024 x 256 GEMV. Checks both agree before timing; prints the speedup.
 */
import { Activation, dot, gemv, simdLevel } from '../src/native.js';
import { check, compare, table } from './util.js';

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = (s / 2 ** 32) * 2 - 1;
  }
  return a;
}

/** The fair JS baseline: four independent accumulators, unrolled by four. */
export function jsDot(a: Float32Array, b: Float32Array, aOff = 0, n = a.length): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[aOff + i]! * b[i]!;
    s1 += a[aOff + i + 1]! * b[i + 1]!;
    s2 += a[aOff + i + 2]! * b[i + 2]!;
    s3 += a[aOff + i + 3]! * b[i + 3]!;
  }
  for (; i < n; i++) s0 += a[aOff + i]! * b[i]!;
  return s0 + s1 + s2 + s3;
}

function jsGemv(x: Float32Array, rows: number, cols: number, w: Float32Array, bias: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) out[r] = jsDot(x, w, r * cols, cols) + bias;
}

export function runKernels(): Record<string, number> {
  const figures: Record<string, number> = {};
  const rows: Array<Array<string | number>> = [];
  let sink = 0;
  for (const n of [64, 100, 256, 1024]) {
    const a = rand(n, n);
    const b = rand(n, n + 1);
    check(Math.abs(dot(a, b) - jsDot(a, b)) < 1e-4 * n, `dot ${n}: native ${dot(a, b)} vs js ${jsDot(a, b)}`);
    const r = compare(() => { sink += dot(a, b); }, () => { sink += jsDot(a, b); });
    rows.push([`dot ${n}`, r.a, r.b, `${r.ratio.toFixed(2)}x`]);
    figures[`dot${n}Speedup`] = r.ratio;
  }
  const R = 1024;
  const C = 256;
  const x = rand(R * C, 7);
  const w = rand(C, 8);
  const outN = new Float32Array(R);
  const outJ = new Float32Array(R);
  const bias = new Float32Array([0.5]);
  gemv(x, R, C, w, 1, bias, Activation.none, outN);
  jsGemv(x, R, C, w, 0.5, outJ);
  for (let i = 0; i < R; i++) check(Math.abs(outN[i]! - outJ[i]!) < 1e-3, `gemv row ${i}: ${outN[i]} vs ${outJ[i]}`);
  const g = compare(() => gemv(x, R, C, w, 1, bias, Activation.none, outN), () => jsGemv(x, R, C, w, 0.5, outJ), 7, 300);
  rows.push([`gemv ${R}x${C}`, g.a, g.b, `${g.ratio.toFixed(2)}x`]);
  figures.gemvSpeedup = g.ratio;
  figures.gemvNativeUs = g.a / 1000;
  figures.gemvJsUs = g.b / 1000;
  table(`Native (${simdLevel}) vs plain JS, ns per call (median of 7 interleaved rounds)`, ['kernel', 'native ns', 'JS ns', 'speedup'], rows);
  if (sink === 42) console.log('');
  return figures;
}
