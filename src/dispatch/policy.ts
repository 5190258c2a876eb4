/**
 * Where each model kind runs by default: inline on the I/O thread, or in the worker pool.
 *
 * Chosen from `npm run bench` (bench/dispatch.ts; figures in README.md "Dispatch"): a hop to a
 * worker and back costs tens of microseconds per batch, while a 100-feature linear/logistic row
 * costs about 0.1 us to compute, so those models run inline at every batch size. ONNX graphs
 * are arbitrary and can take milliseconds; running them in the pool keeps one slow model from
 * stalling every other request on the I/O thread. A manifest's `dispatch` overrides this.
 */
import type { DispatchMode, ModelKind } from '../model/manifest.js';

export const DEFAULT_DISPATCH: Record<ModelKind, DispatchMode> = {
  linear: 'inline',
  logistic: 'inline',
  onnx: 'pool',
  fixture: 'pool',
  // State read in place from shared memory, microseconds per decision.
  linucb: 'inline',
  thompson: 'inline',
  'epsilon-greedy': 'inline',
  'online-logistic': 'inline',
};
