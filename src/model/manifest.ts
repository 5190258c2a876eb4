/**
 * A model version's manifest: what it is (name, version, kind), what it takes and returns
 * (signature), which payload it runs (file + SHA-256), and how it is served (batching, dispatch).
 * Stored as `model.json` beside the payload. Everything is checked here, once, at load.
 */
import { SHA256_HEX } from '../artifacts/integrity.js';
import { SluiceError } from '../errors.js';
import { parsePolicies, policiesToJSON, type Policies } from './policies.js';
import { arrayClassOf, isDatatype, type Datatype } from './tensor.js';
import { NAME_PATTERN } from '../names.js';
import { isLearnedKind, parseBanditConfig } from '../learn/bandit/config.js';
import { parseLogisticConfig } from '../learn/logistic-learner.js';

export const MODEL_KINDS = ['linear', 'logistic', 'onnx', 'fixture', 'linucb', 'thompson', 'epsilon-greedy', 'online-logistic'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];
export type DispatchMode = 'inline' | 'pool';

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** -1 marks a variable dimension; with batching the first dimension is the batch (-1). */
  shape: number[];
}

export interface Signature {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface Batching {
  /** Rows per batch the model accepts (Triton's max_batch_size); 0 = no batch dimension. */
  maxBatchSize: number;
  /** How long the dynamic batcher may hold a request to grow a batch (microseconds). */
  maxQueueDelayUs: number;
  /** Requests queued per version before new ones get OVERLOADED. */
  maxQueueSize: number;
}

export interface Manifest {
  name: string;
  version: string;
  kind: ModelKind;
  signature: Signature;
  payload: { file: string; sha256: string };
  batching: Batching;
  /** Explicit dispatch; when absent the kind's measured default applies (see dispatch/policy). */
  dispatch?: DispatchMode;
  /** Free-form, kind-specific options (e.g. fixture behaviour). */
  parameters: Record<string, unknown>;
  /** Fallback, circuit breaker and prediction cache (src/model/policies.ts); all optional. */
  policies: Policies;
}

// Model names and versions follow the one naming rule (src/names.ts).
const FILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const DEFAULT_BATCHING: Batching = { maxBatchSize: 1024, maxQueueDelayUs: 0, maxQueueSize: 4096 };

function bad(where: string, what: string): SluiceError {
  return new SluiceError('MANIFEST_INVALID', `${where}: ${what}`);
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(where, 'must be an object');
  return v as Record<string, unknown>;
}

function str(v: unknown, where: string, pattern?: RegExp): string {
  if (typeof v !== 'string' || (pattern && !pattern.test(v))) {
    throw bad(where, pattern ? `must be a string matching ${pattern}` : 'must be a string');
  }
  return v;
}

function int(v: unknown, where: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw bad(where, `must be an integer in [${min}, ${max}]`);
  }
  return v;
}

function tensorSpecs(v: unknown, where: string, batched: boolean): TensorSpec[] {
  if (!Array.isArray(v) || v.length === 0) throw bad(where, 'must be a non-empty array');
  const seen = new Set<string>();
  return v.map((t, i) => {
    const w = `${where}[${i}]`;
    const o = obj(t, w);
    const name = str(o.name, `${w}.name`, /^[A-Za-z0-9_.:/-]{1,128}$/);
    if (seen.has(name)) throw bad(w, `duplicate tensor name ${name}`);
    seen.add(name);
    if (!isDatatype(o.datatype)) throw bad(`${w}.datatype`, 'must be an Open Inference Protocol datatype');
    if (!arrayClassOf(o.datatype)) throw bad(`${w}.datatype`, `${o.datatype} tensors are not supported yet`);
    if (!Array.isArray(o.shape) || o.shape.length === 0 || o.shape.length > 8) throw bad(`${w}.shape`, 'must list 1 to 8 dimensions');
    const shape = o.shape.map((d, j) => int(d, `${w}.shape[${j}]`, -1, 2 ** 31 - 1));
    if (shape.some((d) => d === 0)) throw bad(`${w}.shape`, 'dimensions must be -1 or positive');
    if (batched && shape[0] !== -1) throw bad(`${w}.shape`, 'first dimension must be -1 (the batch) when max_batch_size > 0');
    return { name, datatype: o.datatype, shape };
  });
}

/** Parses and checks a manifest object (already JSON-decoded). Throws MANIFEST_INVALID. */
export function parseManifest(raw: unknown, where = 'model.json'): Manifest {
  const o = obj(raw, where);
  const name = str(o.name, `${where}.name`, NAME_PATTERN);
  const version = str(o.version, `${where}.version`, NAME_PATTERN);
  const kind = str(o.kind, `${where}.kind`);
  if (!(MODEL_KINDS as readonly string[]).includes(kind)) throw bad(`${where}.kind`, `must be one of ${MODEL_KINDS.join(', ')}`);
  const maxBatchSize = o.max_batch_size === undefined ? DEFAULT_BATCHING.maxBatchSize : int(o.max_batch_size, `${where}.max_batch_size`, 0, 1 << 20);
  const db = o.dynamic_batching === undefined ? {} : obj(o.dynamic_batching, `${where}.dynamic_batching`);
  const batching: Batching = {
    maxBatchSize,
    maxQueueDelayUs: db.max_queue_delay_us === undefined ? DEFAULT_BATCHING.maxQueueDelayUs : int(db.max_queue_delay_us, `${where}.dynamic_batching.max_queue_delay_us`, 0, 10_000_000),
    maxQueueSize: db.max_queue_size === undefined ? DEFAULT_BATCHING.maxQueueSize : int(db.max_queue_size, `${where}.dynamic_batching.max_queue_size`, 1, 1 << 20),
  };
  const sig = obj(o.signature, `${where}.signature`);
  const signature: Signature = {
    inputs: tensorSpecs(sig.inputs, `${where}.signature.inputs`, maxBatchSize > 0),
    outputs: tensorSpecs(sig.outputs, `${where}.signature.outputs`, maxBatchSize > 0),
  };
  const p = obj(o.payload, `${where}.payload`);
  const payload = {
    file: str(p.file, `${where}.payload.file`, FILE_PATTERN),
    sha256: str(p.sha256, `${where}.payload.sha256`, SHA256_HEX),
  };
  let dispatch: DispatchMode | undefined;
  if (o.dispatch !== undefined) {
    if (o.dispatch !== 'inline' && o.dispatch !== 'pool') throw bad(`${where}.dispatch`, 'must be "inline" or "pool"');
    dispatch = o.dispatch;
  }
  const parameters = o.parameters === undefined ? {} : obj(o.parameters, `${where}.parameters`);
  const policies = Object.freeze(parsePolicies(o, where, name, signature, maxBatchSize > 0));
  const m: Manifest = Object.freeze({ name, version, kind: kind as ModelKind, signature, payload, batching, dispatch, parameters, policies });
  if (isLearnedKind(kind)) {
    // An answer of a version learned online is a decision made now from the learned state: a
    // cached or fallback answer would be a decision never logged, and the pool cannot read the
    // state cell in place.
    if (Object.keys(policiesToJSON(policies)).length > 0) throw bad(where, `${kind} models take no fallback, circuit breaker or prediction cache`);
    if (dispatch === 'pool') throw bad(`${where}.dispatch`, `${kind} models run inline (their state is shared memory the I/O threads read)`);
    if (kind === 'online-logistic') parseLogisticConfig(m);
    else parseBanditConfig(m);
  }
  return m;
}

/** The manifest in its on-disk (snake_case) form, for writing model.json files. */
export function manifestToJSON(m: Manifest): Record<string, unknown> {
  return {
    name: m.name,
    version: m.version,
    kind: m.kind,
    signature: m.signature,
    payload: m.payload,
    max_batch_size: m.batching.maxBatchSize,
    dynamic_batching: { max_queue_delay_us: m.batching.maxQueueDelayUs, max_queue_size: m.batching.maxQueueSize },
    ...(m.dispatch ? { dispatch: m.dispatch } : {}),
    ...(Object.keys(m.parameters).length ? { parameters: m.parameters } : {}),
    ...policiesToJSON(m.policies),
  };
}

/**
 * Orders version strings the way people expect: numeric dot-separated parts compare as numbers
 * ("10" > "9", "1.10.0" > "1.9.3"), anything else as text. Used to pick the latest version.
 */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) {
      if (nx !== ny) return nx < ny ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}
