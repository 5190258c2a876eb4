/**
 * The acceptance test's oracle: unpenalised logistic regression (with intercept) fitted by
 * Newton's method to convergence. Checked against statsmodels in online-logistic.test.ts.
 */

export interface LogisticFit {
  weights: Float64Array;
  bias: number;
  /** Mean log-loss on the data it was fitted on. */
  meanLogLoss: number;
  iterations: number;
}

/** Solves A z = b (A symmetric positive definite, k x k row-major) by Cholesky. */
function solveSpd(a: Float64Array, b: Float64Array, k: number): Float64Array {
  const l = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * k + j]!;
      for (let m = 0; m < j; m++) s -= l[i * k + m]! * l[j * k + m]!;
      l[i * k + j] = i === j ? Math.sqrt(s) : s / l[j * k + j]!;
    }
  }
  const z = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = b[i]!;
    for (let m = 0; m < i; m++) s -= l[i * k + m]! * z[m]!;
    z[i] = s / l[i * k + i]!;
  }
  for (let i = k - 1; i >= 0; i--) {
    let s = z[i]!;
    for (let m = i + 1; m < k; m++) s -= l[m * k + i]! * z[m]!;
    z[i] = s / l[i * k + i]!;
  }
  return z;
}

/** Mean log-loss of (weights, bias) on n rows of x (n x d). */
export function meanLogLoss(x: Float32Array, y: Float64Array, n: number, d: number, weights: Float64Array, bias: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    let z = bias;
    for (let j = 0; j < d; j++) z += weights[j]! * x[i * d + j]!;
    sum += (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z))) - y[i]! * z;
  }
  return sum / n;
}

/** Newton-Raphson on the mean log-loss until the step is below `tol` (max-norm). */
export function fitLogistic(x: Float32Array, y: Float64Array, n: number, d: number, tol = 1e-12, maxIter = 100): LogisticFit {
  const k = d + 1; // weights, then the intercept
  const beta = new Float64Array(k);
  const row = new Float64Array(k);
  for (let iter = 1; iter <= maxIter; iter++) {
    const grad = new Float64Array(k);
    const hess = new Float64Array(k * k);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) row[j] = x[i * d + j]!;
      row[d] = 1;
      let z = 0;
      for (let j = 0; j < k; j++) z += beta[j]! * row[j]!;
      const p = 1 / (1 + Math.exp(-z));
      const w = p * (1 - p);
      for (let a = 0; a < k; a++) {
        grad[a] = grad[a]! + (p - y[i]!) * row[a]!;
        for (let b = 0; b <= a; b++) hess[a * k + b] = hess[a * k + b]! + w * row[a]! * row[b]!;
      }
    }
    for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) hess[b * k + a] = hess[a * k + b]!;
    const step = solveSpd(hess, grad, k);
    let biggest = 0;
    for (let j = 0; j < k; j++) {
      beta[j] = beta[j]! - step[j]!;
      biggest = Math.max(biggest, Math.abs(step[j]!));
    }
    if (biggest < tol) {
      const weights = beta.slice(0, d);
      return { weights, bias: beta[d]!, meanLogLoss: meanLogLoss(x, y, n, d, weights, beta[d]!), iterations: iter };
    }
  }
  throw new Error(`Newton did not converge in ${maxIter} iterations`);
}
