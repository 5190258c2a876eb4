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
}

export interface LoadOptions {
  /** Allow the test-only `fixture` kind (never enabled by default). */
  allowFixtures: boolean;
  /** Whether this runtime will run inside a pool worker (some fixtures may only run there). */
  inWorker: boolean;
}
