/**
 * Native SIMD kernels vs plain JavaScript: dot products of 64/100/256/1024 floats, a
 * 1024 x 256 GEMV and the linear models' hot call (LinearKernel.run, 1 and 16 rows of 100).
 * Checks both agree before timing; prints the speedup. Also the finite check of binary tensors
 * (NaN/infinity) against a JS loop, and its share of decoding a request.
 */
import { decodeInfer } from '../src/frontend/codec/oip-infer.js';
import { Activation, dot, firstNonFiniteF32, gemv, LinearKernel, simdLevel } from '../src/native.js';
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

/** The JS baseline of the finite check. */
function jsFirstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i]!)) return i;
  return -1;
}

/** An HTTP binary-extension body with `x` as its one FP32 input, its binary part 8-byte aligned as the server lays it out. */
function binaryInferBody(x: Float32Array): { bytes: Uint8Array; jsonLength: number } {
  let json = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [x.length / 100, 100], parameters: { binary_data_size: x.byteLength } }] });
  while (json.length % 8) json += ' ';
  const bytes = new Uint8Array(json.length + x.byteLength);
  bytes.set(Buffer.from(json));
  bytes.set(new Uint8Array(x.buffer, x.byteOffset, x.byteLength), json.length);
  return { bytes, jsonLength: json.length };
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
  // The inline hot path of linear/logistic models: LinearKernel.run, whose weights live in the
  // addon's thread-local slab (shared with other threads through an Arc it never touches per
  // call), so only x and out cross N-API. Against the same sigmoid(x . w + b) in JS.
  for (const lr of [1, 16]) {
    const F = 100;
    const wl = rand(F, 21);
    const xl = rand(lr * F, 22);
    const kernel = new LinearKernel(wl, new Float32Array([0.25]), F, 1, Activation.sigmoid);
    const outK = new Float32Array(lr);
    const outJ = new Float32Array(lr);
    const jsLinear = (): void => {
      for (let r = 0; r < lr; r++) outJ[r] = 1 / (1 + Math.exp(-(jsDot(xl, wl, r * F, F) + 0.25)));
    };
    kernel.run(xl, lr, outK);
    jsLinear();
    for (let r = 0; r < lr; r++) check(Math.abs(outK[r]! - outJ[r]!) < 1e-5, `linear row ${r}: ${outK[r]} vs ${outJ[r]}`);
    const r = compare(() => kernel.run(xl, lr, outK), jsLinear);
    rows.push([`LinearKernel.run ${lr}x${F}`, r.a, r.b, `${r.ratio.toFixed(2)}x`]);
    figures[`linearRun${lr}x${F}Ns`] = r.a;
    kernel.dispose();
  }
  for (const n of [100, 102_400]) {
    const x = rand(n, n + 2);
    check(firstNonFiniteF32(x) === -1 && jsFirstNonFinite(x) === -1, `finite ${n}: clean tensor`);
    x[n - 1] = NaN;
    check(firstNonFiniteF32(x) === n - 1 && jsFirstNonFinite(x) === n - 1, `finite ${n}: NaN found at the end`);
    x[n - 1] = 0.5;
    const r = compare(() => { sink += firstNonFiniteF32(x); }, () => { sink += jsFirstNonFinite(x); });
    rows.push([`finite check ${n}`, r.a, r.b, `${r.ratio.toFixed(2)}x`]);
    figures[`finite${n}Speedup`] = r.ratio;
  }
  table(`Native (${simdLevel}) vs plain JS, ns per call (median of 7 interleaved rounds)`, ['kernel', 'native ns', 'JS ns', 'speedup'], rows);
  const share: Array<Array<string | number>> = [];
  for (const n of [100, 102_400]) {
    const x = rand(n, n + 3);
    const body = binaryInferBody(x);
    check(decodeInfer(body.bytes, body.jsonLength, 32, 0, 'm', undefined).request.inputs[0]!.data.length === n, `decode ${n}`);
    const r = compare(() => { sink += firstNonFiniteF32(x); }, () => { sink += decodeInfer(body.bytes, body.jsonLength, 32, 0, 'm', undefined).request.inputs.length; });
    // The HTTP layer copies every body once as it reads it (uWS chunks into one buffer): the
    // least any server pays per byte, measured the same way.
    const copy = new Uint8Array(x.byteLength);
    const src = new Uint8Array(x.buffer);
    const c = compare(() => { sink += firstNonFiniteF32(x); }, () => { copy.set(src); sink += copy[0]!; });
    share.push([`${n} floats (${n / 100} rows of 100)`, r.a, r.b, c.b, `${(100 / r.ratio).toFixed(1)}%`, `${(1 / c.ratio).toFixed(2)}x`]);
    figures[`finite${n}ShareOfDecodePct`] = 100 / r.ratio;
    figures[`finite${n}VsCopy`] = 1 / c.ratio;
  }
  table('Finite check vs decoding the HTTP binary-extension request that carries the tensor (the decode includes the check; binary tensors are not copied) and vs one copy of the tensor bytes', ['tensor', 'check ns', 'decode ns', 'copy ns', 'check / decode', 'check / copy'], share);
  if (sink === 42) console.log('');
  return figures;
}
