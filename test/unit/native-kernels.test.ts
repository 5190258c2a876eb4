import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Activation, dot, dotScalar, firstNonFiniteF16, firstNonFiniteF32, firstNonFiniteF64, firstNonFiniteScalar, gemv, gemvScalar, simdLevel } from '../../src/native.js';
import { mulberry32, randomF32 } from '../helpers/random.js';

const F32_EPS = 2 ** -23;

/** Float64 reference dot product and the sum of |a_i b_i| that bounds rounding error. */
function ref(a: Float32Array, b: Float32Array): { value: number; mag: number } {
  let value = 0;
  let mag = 0;
  for (let i = 0; i < a.length; i++) {
    value += a[i]! * b[i]!;
    mag += Math.abs(a[i]! * b[i]!);
  }
  return { value, mag };
}

/** Any two f32 summation orders of n products differ by at most ~2 n eps sum|a_i b_i|. */
function tolerance(n: number, mag: number): number {
  return 2 * (n + 2) * F32_EPS * mag + 1e-30;
}

describe('native dot product', () => {
  it('runs the SIMD path on this machine when the CPU has AVX2+FMA', () => {
    // The suite compares SIMD with scalar; on a CPU without AVX2 both sides are scalar.
    expect(['avx2+fma', 'scalar']).toContain(simdLevel);
    if (/avx2/.test(execFileSync('cat', ['/proc/cpuinfo']).toString())) expect(simdLevel).toBe('avx2+fma');
  });

  it('SIMD equals the scalar reference on every length 0..67', () => {
    for (let n = 0; n <= 67; n++) {
      const a = randomF32(n, 1000 + n);
      const b = randomF32(n, 2000 + n);
      const { value, mag } = ref(a, b);
      const simd = dot(a, b);
      const scalar = dotScalar(a, b);
      expect(Math.abs(simd - scalar), `n=${n}`).toBeLessThanOrEqual(tolerance(n, mag));
      expect(Math.abs(simd - value), `n=${n} vs f64`).toBeLessThanOrEqual(tolerance(n, mag));
    }
  });

  it('SIMD equals the scalar reference on random sizes up to 5000 and on unaligned views', () => {
    const r = mulberry32(7);
    for (let k = 0; k < 200; k++) {
      const n = Math.floor(r() * 5000);
      const off = Math.floor(r() * 7); // subarray offsets break 32-byte alignment
      const a = randomF32(n + off, 3 * k).subarray(off);
      const b = randomF32(n + off, 3 * k + 1, 100).subarray(off);
      const { mag } = ref(a, b);
      expect(Math.abs(dot(a, b) - dotScalar(a, b)), `n=${n} off=${off}`).toBeLessThanOrEqual(tolerance(n, mag));
    }
  });

  it('reads SharedArrayBuffer-backed arrays in place', () => {
    const shared = new Float32Array(new SharedArrayBuffer(4 * 200));
    shared.set(randomF32(200, 5));
    const a = shared.subarray(0, 100);
    const b = shared.subarray(100);
    expect(dot(a, b)).toBeCloseTo(ref(a, b).value, 4);
  });

  it('can be forced to the scalar path with SLUICE_SIMD=scalar', () => {
    const out = execFileSync(process.execPath, [
      '-e',
      `const n = require(${JSON.stringify(process.cwd() + '/native/sluice-native.node')});
       console.log(n.simdLevel(), n.dot(new Float32Array([1,2,3]), new Float32Array([4,5,6])));`,
    ], { env: { ...process.env, SLUICE_SIMD: 'scalar' } }).toString().trim();
    expect(out).toBe('scalar 32');
  });
});

function jsGemv(x: Float32Array, rows: number, cols: number, w: Float32Array, outputs: number, bias: Float32Array, act: number): { out: Float64Array; mag: Float64Array } {
  const out = new Float64Array(rows * outputs);
  const mag = new Float64Array(rows * outputs);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outputs; o++) {
      let s = bias.length ? bias[o]! : 0;
      let m = Math.abs(s);
      for (let c = 0; c < cols; c++) {
        s += x[r * cols + c]! * w[o * cols + c]!;
        m += Math.abs(x[r * cols + c]! * w[o * cols + c]!);
      }
      out[r * outputs + o] = s;
      mag[r * outputs + o] = m;
    }
    if (act === Activation.sigmoid) for (let o = 0; o < outputs; o++) out[r * outputs + o] = 1 / (1 + Math.exp(-out[r * outputs + o]!));
    if (act === Activation.softmax) {
      const row = out.subarray(r * outputs, (r + 1) * outputs);
      const mx = Math.max(...row);
      let sum = 0;
      for (let o = 0; o < outputs; o++) sum += row[o] = Math.exp(row[o]! - mx);
      for (let o = 0; o < outputs; o++) row[o]! /= sum;
    }
  }
  return { out, mag };
}

describe('native batched GEMV', () => {
  it('SIMD equals scalar and a float64 reference for every tail length, row count and activation', () => {
    let seed = 1;
    for (const act of [Activation.none, Activation.sigmoid, Activation.softmax]) {
      for (const outputs of [1, 3]) {
        for (const rows of [0, 1, 3, 4, 5, 9]) {
          for (let cols = 0; cols <= 67; cols++) {
            const x = randomF32(rows * cols, seed++);
            const w = randomF32(outputs * cols, seed++);
            const bias = randomF32(outputs, seed++);
            const simd = new Float32Array(rows * outputs);
            const scalar = new Float32Array(rows * outputs);
            gemv(x, rows, cols, w, outputs, bias, act, simd);
            gemvScalar(x, rows, cols, w, outputs, bias, act, scalar);
            const { out, mag } = jsGemv(x, rows, cols, w, outputs, bias, act);
            for (let i = 0; i < simd.length; i++) {
              // Activations are 1-Lipschitz (sigmoid 1/4), so the linear-part bound still holds,
              // plus a few ulps for exp in float32.
              const tol = tolerance(cols + 1, mag[i]!) + (act === Activation.none ? 0 : 4e-7);
              const where = `act=${act} rows=${rows} cols=${cols} outputs=${outputs} i=${i}`;
              expect(Math.abs(simd[i]! - scalar[i]!), where).toBeLessThanOrEqual(tol);
              expect(Math.abs(simd[i]! - out[i]!), where).toBeLessThanOrEqual(tol);
            }
          }
        }
      }
    }
  });

  it('computes the 1024x256 benchmark shape correctly, with and without bias', () => {
    const rows = 1024;
    const cols = 256;
    const x = randomF32(rows * cols, 11);
    const w = randomF32(cols, 12);
    for (const bias of [new Float32Array([0.5]), new Float32Array(0)]) {
      const out = new Float32Array(rows);
      gemv(x, rows, cols, w, 1, bias, Activation.none, out);
      const { out: want, mag } = jsGemv(x, rows, cols, w, 1, bias, Activation.none);
      for (let i = 0; i < rows; i++) expect(Math.abs(out[i]! - want[i]!)).toBeLessThanOrEqual(tolerance(cols, mag[i]!));
    }
  });

  it('softmax rows sum to one and survive huge logits', () => {
    const x = new Float32Array([1000, -1000, 0, 3e38]);
    const w = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    const out = new Float32Array(3);
    gemv(x.subarray(0, 4), 1, 4, w, 3, new Float32Array(0), Activation.softmax, out);
    expect(out[0]).toBeCloseTo(1, 6);
    expect(out[1]).toBe(0);
    expect(out.every(Number.isFinite)).toBe(true);
  });
});

describe('native argument checking', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return 'no error';
  };
  const f = (n: number) => new Float32Array(n);

  it('rejects every bad argument with a coded error, never a crash', () => {
    expect(code(() => dot(f(3), f(2)))).toBe('ERR_NATIVE_SHAPE_MISMATCH');
    expect(code(() => dot(f(3), [1, 2, 3] as unknown as Float32Array))).toBe('ERR_NATIVE_INVALID_ARGUMENT');
    expect(code(() => dot(f(3), new Float64Array(3) as unknown as Float32Array))).toBe('ERR_NATIVE_INVALID_ARGUMENT');
    expect(code(() => dot(undefined as unknown as Float32Array, f(1)))).toBe('ERR_NATIVE_INVALID_ARGUMENT');
    expect(code(() => gemv(f(8), 2, 4, f(4), 1, f(0), 0, f(3)))).toBe('ERR_NATIVE_SHAPE_MISMATCH');
    expect(code(() => gemv(f(8), 2, 4, f(5), 1, f(0), 0, f(2)))).toBe('ERR_NATIVE_SHAPE_MISMATCH');
    expect(code(() => gemv(f(8), 2, 4, f(4), 1, f(2), 0, f(2)))).toBe('ERR_NATIVE_SHAPE_MISMATCH');
    expect(code(() => gemv(f(8), 2, 4, f(4), 1, f(0), 7, f(2)))).toBe('ERR_NATIVE_INVALID_ARGUMENT');
    expect(code(() => gemv(f(8), -2, 4, f(4), 1, f(0), 0, f(2)))).toBe('ERR_NATIVE_INVALID_ARGUMENT');
    expect(code(() => gemv(f(8), 1.5, 4, f(4), 1, f(0), 0, f(2)))).toBe('ERR_NATIVE_INVALID_ARGUMENT');
    expect(code(() => gemv(f(8), NaN, 4, f(4), 1, f(0), 0, f(2)))).toBe('ERR_NATIVE_INVALID_ARGUMENT');
    expect(code(() => gemv(f(8), 2 ** 32 - 1, 2 ** 32 - 1, f(4), 1, f(0), 0, f(2)))).not.toBe('no error');
    const x = f(8);
    expect(code(() => gemv(x, 2, 4, f(4), 1, f(0), 0, x.subarray(6)))).toBe('ERR_NATIVE_ALIASED_ARGUMENT');
    expect(code(() => gemv(x, 2, 4, x.subarray(0, 4), 1, f(0), 0, x.subarray(4, 6)))).toBe('ERR_NATIVE_ALIASED_ARGUMENT');
    // The process is still fine and the kernels still answer.
    expect(dot(new Float32Array([2]), new Float32Array([3]))).toBe(6);
  });
});

describe('native finite checks (NaN and infinities of raw FP32, FP64, FP16 tensors)', () => {
  const bytesOf = (a: Float32Array | Float64Array | Uint16Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  /** The JS reference: the first element whose value is not finite. */
  const jsFirst = (a: ArrayLike<number>, half: boolean) => {
    for (let i = 0; i < a.length; i++) {
      if (half ? (a[i]! & 0x7c00) === 0x7c00 : !Number.isFinite(a[i]!)) return i;
    }
    return -1;
  };
  const kinds = [
    { dt: 'FP32' as const, make: (n: number) => new Float32Array(n), simd: (a: any) => firstNonFiniteF32(a), bad: [NaN, Infinity, -Infinity], good: [3.4028234663852886e38, -1e-45, 0, 1.5] },
    { dt: 'FP64' as const, make: (n: number) => new Float64Array(n), simd: (a: any) => firstNonFiniteF64(a), bad: [NaN, Infinity, -Infinity], good: [Number.MAX_VALUE, -5e-324, 0, 1.5] },
    { dt: 'FP16' as const, make: (n: number) => new Uint16Array(n), simd: (a: any) => firstNonFiniteF16(a), bad: [0x7c00, 0xfc00, 0x7e00, 0x7c01], good: [0x7bff, 0xfbff, 0x0001, 0x3c00] },
  ];

  for (const k of kinds) {
    it(`${k.dt}: SIMD equals the scalar reference and JS on every length 0..130 and every bad position`, () => {
      for (let n = 0; n <= 130; n++) {
        const a = k.make(n + 1).subarray(1); // an odd offset: unaligned for the vector loads
        for (let i = 0; i < n; i++) a[i] = k.good[i % k.good.length]!;
        expect(k.simd(a), `n=${n} clean`).toBe(-1);
        expect(firstNonFiniteScalar(bytesOf(a), k.dt)).toBe(-1);
        for (let at = 0; at < n; at++) {
          const keep = a[at]!;
          a[at] = k.bad[at % k.bad.length]!;
          expect(k.simd(a), `n=${n} at=${at}`).toBe(at);
          expect(firstNonFiniteScalar(bytesOf(a), k.dt), `scalar n=${n} at=${at}`).toBe(at);
          expect(jsFirst(a, k.dt === 'FP16')).toBe(at);
          a[at] = keep;
        }
      }
    });
  }

  it('FP16: every one of the 65,536 bit patterns is classified as the JS half decoder does', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const wrong: number[] = [];
    for (let h = 0; h < 65536; h++) {
      if ((firstNonFiniteF16(all.subarray(h, h + 1)) === 0) !== (((h >> 10) & 0x1f) === 0x1f)) wrong.push(h);
    }
    expect(wrong).toEqual([]);
  });

  it('reads SharedArrayBuffer-backed arrays in place, and a long tensor finds its last element', () => {
    const shared = new Float32Array(new SharedArrayBuffer(4 * 102_400));
    shared.fill(0.25);
    expect(firstNonFiniteF32(shared)).toBe(-1);
    shared[102_399] = NaN;
    expect(firstNonFiniteF32(shared)).toBe(102_399);
  });

  it('the scalar reference refuses partial elements and unknown kinds with coded errors', () => {
    expect(() => firstNonFiniteScalar(new Uint8Array(3), 'FP32')).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
  });
});
