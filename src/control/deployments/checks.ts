/**
 * The canary judge's settings and their defaults (judge.ts applies them; spec.ts reads them from
 * the API). Apart from the judge so that reading a definition loads no statistics library.
 */
export interface CanaryChecks {
  /** Largest tolerated canary error rate minus stable error rate (absolute, e.g. 0.01). */
  maxErrorIncrease: number;
  /** Largest tolerated canary p99 / stable p99. */
  maxP99Ratio: number;
  alpha: number;
  /** Requests of each version in the window before a check can pass. */
  minRequests: number;
}

export const DEFAULT_CHECKS: Readonly<CanaryChecks> = Object.freeze({ maxErrorIncrease: 0.01, maxP99Ratio: 1.5, alpha: 0.05, minRequests: 100 });

