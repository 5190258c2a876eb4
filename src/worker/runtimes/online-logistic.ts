/**
 * `online-logistic` models: P(y = 1 | x) = sigmoid(w . x + b) per row, with w and b the weights
 * the online learner (src/learn/logistic-learner.ts) last published in the version's state cell
 * ([w (d) | bias]). The payload holds the starting weights, in the `logistic` form.
 */
import { SluiceError } from '../../errors.js';
import type { Manifest } from '../../model/manifest.js';
import { StateCell } from '../../learn/state-cell.js';
import { logisticDims } from '../../learn/logistic-learner.js';
import { parseLinearPayload } from './linear.js';
import type { BatchTensor, LearnedInfo, Runtime } from './types.js';

/** The payload's starting weights (one output row) and bias. */
export function logisticStart(m: Manifest, payload: Uint8Array): { weights: Float32Array; bias: number } {
  const p = parseLinearPayload(m, payload);
  return { weights: p.w, bias: p.bias[0]! };
}

export function loadOnlineLogistic(m: Manifest, payload: Uint8Array, learned: SharedArrayBuffer | undefined): Runtime {
  const d = logisticDims(m);
  const start = logisticStart(m, payload);
  let cell: StateCell;
  if (learned) {
    cell = new StateCell(learned);
    if (cell.length !== d + 1) throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: the state cell holds ${cell.length} values, the model needs ${d + 1}`);
  } else {
    cell = new StateCell(d + 1);
    const s = new Float64Array(d + 1);
    s.set(start.weights);
    s[d] = start.bias;
    cell.publish(s, 0, 0);
  }
  const info: LearnedInfo = { lastState: 0, decides: 'row' };
  return {
    manifest: m,
    learned: info,
    run(inputs: readonly BatchTensor[], rows: number): BatchTensor[] {
      const x = inputs[0]!.data as Float32Array;
      const out = new Float32Array(rows);
      for (;;) {
        const view = cell.read();
        const w = view.data;
        for (let r = 0; r < rows; r++) {
          let z = w[d]!;
          for (let j = 0; j < d; j++) z += w[j]! * x[r * d + j]!;
          out[r] = 1 / (1 + Math.exp(-z));
        }
        if (cell.stable(view)) {
          info.lastState = view.state;
          break;
        }
      }
      return [{ data: out, shape: [rows, 1] }];
    },
    async dispose() {},
  };
}
