/**
 * What the data plane and the control plane agree on (src/service/data-plane.ts, engine.ts,
 * src/io/): the shapes a version and the shared memory take when they cross threads, the
 * plane's options and version events, and the two lookups every transport answers the same way.
 */
import { SluiceError } from '../errors.js';
import type { Config } from '../config/index.js';
import type { DispatchMode, Manifest } from '../model/manifest.js';
import { invalidName, isValidName } from '../names.js';
import type { DecisionChunk } from '../learn/decision-chunk.js';
import type { SharedRuntime } from '../worker/runtimes/index.js';

/**
 * A lookup miss: NAME_INVALID when the name breaks the naming rule (src/names.ts), so every
 * transport answers a bad name the same way; checked only on a miss, never on the hot path.
 */
export function modelNotFound(name: unknown): SluiceError {
  return isValidName(name) ? new SluiceError('MODEL_NOT_FOUND', `model ${String(name)} is not loaded`) : invalidName('model name');
}

export const PLATFORM: Record<Manifest['kind'], string> = {
  linear: 'sluice_linear',
  logistic: 'sluice_logistic',
  onnx: 'onnxruntime_onnx',
  fixture: 'sluice_fixture',
  linucb: 'sluice_linucb',
  thompson: 'sluice_thompson',
  'epsilon-greedy': 'sluice_epsilon_greedy',
  'online-logistic': 'sluice_online_logistic',
};

/** How a data plane reaches the pool: the producer side of the dispatch board, in this thread. */
export interface Dispatcher {
  /** Makes `slot` dispatchable through board entry `entry`. */
  attach(slot: number, entry: number): void;
  detach(slot: number): void;
  run(slot: number): Promise<void>;
  waitSync(slot: number, us: number): boolean;
}

/** The memory every I/O thread shares with the control plane (structured-clonable: it goes in workerData). */
export interface SharedMemory {
  /** The model table (default-version and route generations per model). */
  table: SharedArrayBuffer;
  /** Pooled batches, in place (absent without a pool). */
  arena?: SharedArrayBuffer;
  /** The dispatch board (absent without a pool). */
  board?: { buffer: SharedArrayBuffer; entries: number; spinUs: number };
}

/** What the control plane publishes about a version (structured-clonable: it crosses threads). */
export interface VersionSpec {
  gen: number;
  /** The model's slot in the shared model table. */
  tableSlot: number;
  manifest: Manifest;
  dispatch: DispatchMode;
  /** Inline versions: the payload the runtime is built from (shared memory, read only). */
  payload?: Uint8Array;
  /**
   * Inline versions whose runtime another thread already built and shares (native linear
   * weights): build on it instead of parsing the payload, so the weights exist once.
   */
  shared?: SharedRuntime;
  /** Pooled versions: this thread's arena slots and their board entries. */
  slots?: number[];
  entries?: number[];
  /** Kinds learned online: the state cell the control plane's learner publishes to. */
  learned?: SharedArrayBuffer;
}

export interface DataPlaneOptions {
  config: Readonly<Config>;
  /** The shared model table's buffer. */
  table: SharedArrayBuffer;
  /** The shared arena (absent without a pool). */
  arena?: SharedArrayBuffer;
  /** This thread's way to the pool (absent without a pool). */
  dispatcher?: Dispatcher;
  /** Which I/O thread this is (0 = the main thread). */
  thread: number;
  /** A retired version's last request on this thread ended; its local copy is freed. */
  onReleased: (gen: number) => void;
  /**
   * Where this thread's routing decisions go, in chunks of at most DECISION_BATCH (the control
   * plane's decision log, whose bounded buffer drops what it cannot hold).
   */
  onDecisions?: (chunk: DecisionChunk) => void;
}

export interface ActivateOptions {
  /** Unversioned requests now reach it (default true). */
  asDefault?: boolean;
  /** The default generation it replaced (for the standby of a `previous_version` fallback). */
  previousDefault?: number;
  /** Generations the control plane no longer keeps live. */
  retire?: number[];
}
