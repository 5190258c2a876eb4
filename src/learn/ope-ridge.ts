/**
 * Ridge regression with an unpenalised intercept, for the direct-method reward model of
 * off-policy evaluation (ope.ts). Pure arithmetic on small dense systems: one (d+1)x(d+1)
 * normal-equation solve per arm, so a Cholesky factorisation is plenty.
 */

/** Accumulates the normal equations of `y ~ b0 + b.x` one row at a time. */
export class RidgeAccumulator {
  readonly dim: number;
  count = 0;
  /** X'X over rows [1, x...], row-major (dim+1)^2. */
  private readonly xtx: Float64Array;
  private readonly xty: Float64Array;

  constructor(dim: number) {
    this.dim = dim;
    this.xtx = new Float64Array((dim + 1) * (dim + 1));
    this.xty = new Float64Array(dim + 1);
  }

  add(x: ArrayLike<number> | undefined, y: number): void {
    const m = this.dim + 1;
    const at = (i: number): number => (i === 0 ? 1 : x![i - 1]!);
    for (let i = 0; i < m; i++) {
      const xi = at(i);
      this.xty[i]! += xi * y;
      for (let j = 0; j <= i; j++) this.xtx[i * m + j]! += xi * at(j);
    }
    this.count++;
  }

  /**
   * Coefficients [intercept, slopes...] minimising |y - Xb|^2 + lambda |slopes|^2. The
   * intercept is not penalised, so with no context (dim 0) this is the mean of y. Needs at
   * least one row: the system is then positive definite for any lambda > 0.
   */
  solve(lambda: number): Float64Array {
    const m = this.dim + 1;
    const a = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j <= i; j++) a[i * m + j] = this.xtx[i * m + j]!;
      if (i > 0) a[i * m + i]! += lambda;
    }
    return choleskySolve(a, this.xty.slice(), m);
  }
}

/**
 * Solves A x = b for a symmetric positive definite A given by its lower triangle (row-major,
 * m x m); overwrites `a` with its Cholesky factor. Throws when A is not positive definite.
 */
export function choleskySolve(a: Float64Array, b: Float64Array, m: number): Float64Array {
  for (let j = 0; j < m; j++) {
    let d = a[j * m + j]!;
    for (let k = 0; k < j; k++) d -= a[j * m + k]! * a[j * m + k]!;
    if (!(d > 0)) throw new RangeError('matrix is not positive definite');
    const ljj = Math.sqrt(d);
    a[j * m + j] = ljj;
    for (let i = j + 1; i < m; i++) {
      let s = a[i * m + j]!;
      for (let k = 0; k < j; k++) s -= a[i * m + k]! * a[j * m + k]!;
      a[i * m + j] = s / ljj;
    }
  }
  // L y = b, then L' x = y, in place.
  for (let i = 0; i < m; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= a[i * m + k]! * b[k]!;
    b[i] = s / a[i * m + i]!;
  }
  for (let i = m - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let k = i + 1; k < m; k++) s -= a[k * m + i]! * b[k]!;
    b[i] = s / a[i * m + i]!;
  }
  return b;
}
