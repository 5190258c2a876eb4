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
  /**
   * Largest tolerated Kolmogorov-Smirnov distance between the canary's and the stable version's
   * sampled predictions over the window (the prediction drift check).
   */
  maxPredictionKs: number;
  /** Sampled predictions of each version before the drift check judges (SLUICE_DRIFT_SAMPLE_RATE sets how many come). */
  minPredictions: number;
  /**
   * Seconds a latency or drift failure must hold, look after look, before it rolls back (0: at
   * once). The judge looks again every interval at a window that grows, each look a test at
   * alpha: a healthy candidate would fail one of a rollout's dozens of looks far more often than
   * alpha, while a real fault persists as the evidence grows (controller.ts). Errors never wait.
   */
  confirmS: number;
}

export const DEFAULT_CHECKS: Readonly<CanaryChecks> = Object.freeze({ maxErrorIncrease: 0.01, maxP99Ratio: 1.5, alpha: 0.05, minRequests: 100, maxPredictionKs: 0.2, minPredictions: 50, confirmS: 3 });

