import type { Manifest } from '../../model/manifest.js';
import type { TypedArray } from '../../model/tensor.js';

/** One input or output of a batch: elements in row-major order and the shape they have. */
export interface BatchTensor {
  data: TypedArray;
  shape: number[];
}

/**
 * A loaded model version, ready to compute. The same runtimes run inline on the I/O thread and
 * inside pool workers.
 */
export interface Runtime {
  readonly manifest: Manifest;
  /**
   * Computes one batch. `inputs` are in signature order. When `into` is given (the pool path
   * passes arena views of exactly rows x row-elements), outputs are written there; otherwise
   * fresh arrays are returned. Outputs come back in signature order.
   */
  run(inputs: readonly BatchTensor[], rows: number, into?: readonly TypedArray[]): BatchTensor[] | Promise<BatchTensor[]>;
  /** Frees native resources (ONNX sessions). Called once, after the last batch. */
  dispose(): Promise<void>;
  /**
   * Offered by runtimes whose read-only state lives in native memory (linear, logistic): a
   * description from which another thread of this process builds the same runtime without a
   * copy of the weights (`loadRuntime(manifest, payload, { shared })`). Each call shares anew;
   * call `releaseShared` once every thread that needed it has loaded (their runtimes keep the
   * state alive, and it is freed with the last of them).
   */
  share?(): SharedRuntime;
  /**
   * Offered by runtimes whose state is learned online (bandits): which published state computed
   * the last batch (their `run` is synchronous, so the caller reads it right after).
   */
  readonly learned?: LearnedInfo;
}

export interface LearnedInfo {
  /** Updates applied to the state that computed the last batch. */
  lastState: number;
  /**
   * Every row is logged as a decision so that feedback can train the version: `arm` (bandits:
   * outputs[0] the arms, INT32, outputs[1] their propensities) or `row` (a prediction whose
   * feedback is its label: no arm, propensity 1).
   */
  readonly decides: 'arm' | 'row';
}

/**
 * A runtime's read-only state, shared by the threads of one process. Plain numbers, so it
 * crosses `postMessage` (structured clone); meaningless in another process.
 */
export type SharedRuntime = SharedLinear;

/** The weights of a linear/logistic model (see LinearKernel.share in src/native.ts). */
export interface SharedLinear {
  kind: 'linear';
  /** Export token of the native weights. */
  token: number;
  /** Features per row. */
  cols: number;
  outputs: number;
  /** Activation code (src/native.ts `Activation`). */
  activation: number;
}

export interface LoadOptions {
  /** Allow the test-only `fixture` kind (never enabled by default). */
  allowFixtures: boolean;
  /** Whether this runtime will run inside a pool worker (some fixtures may only run there). */
  inWorker: boolean;
  /**
   * Build the runtime from state another thread shared (`Runtime.share`) instead of from the
   * payload, which is then not read. The manifest must be the one the state was loaded for.
   */
  shared?: SharedRuntime;
  /**
   * Kinds learned online: the state cell (src/learn/state-cell.ts) the control plane publishes
   * to. Absent (a validation load): the runtime serves the initial state from a cell of its own.
   */
  learned?: SharedArrayBuffer;
}
