/**
 * Drift sampling on the request path (issue #15, item 3): each I/O thread's data plane keeps one
 * of these. A request is sampled with probability `rate`, independently of every other one, by
 * a countdown over geometric gaps (a Bernoulli process drawn gap by gap): an unsampled request
 * costs a decrement and a comparison, no random draw and no allocation. The countdown is the
 * thread's, shared by every version, which changes nothing: each request still has the same
 * chance, whichever version it goes to.
 *
 * A sampled answer copies its first input's first rows (as float32, up to DRIFT_ROWS_PER_REQUEST
 * rows and DRIFT_MAX_FEATURES features) and its first output's first value per row into the
 * version's buffer, with the mean of that output as the request's prediction; a sampled failure
 * records only that it failed (the error stream). Buffers are typed arrays made on a version's
 * first sample and bounded: while one is full, samples are dropped and counted, until the main
 * thread takes them (DriftMonitor, every DRIFT_COLLECT_MS, or when the drift API is read).
 */
import type { Manifest } from '../model/manifest.js';
import type { Tensor } from '../model/tensor.js';

/** Rows kept from one sampled request (a batch request contributes its first rows only). */
export const DRIFT_ROWS_PER_REQUEST = 8;
/** Features kept per row (a wider input keeps its first ones). */
export const DRIFT_MAX_FEATURES = 512;
/** Sampled requests, and rows (~400 KB of a 100-feature version), one version's buffer holds on a thread between two collections. */
export const DRIFT_BUFFER_REQUESTS = 2048;
export const DRIFT_BUFFER_ROWS = 1024;

/** One version's samples from one thread since the last collection (structured-clonable). */
export interface DriftBatch {
  model: string;
  version: string;
  /** Features per row. */
  features: number;
  /** Rows sampled: `x` holds rows * features values, row after row. */
  rows: number;
  x: Float32Array;
  /** The first output's first value, per sampled row. */
  rowPredictions: Float32Array;
  /** Sampled requests, in the order they were answered on this thread. */
  requests: number;
  /** Per sampled request: the mean of its first output (NaN for a failed request). */
  predictions: Float64Array;
  /** Per sampled request: 1 when it failed. */
  failed: Uint8Array;
  /** Sampled requests not kept because the buffer was full. */
  dropped: number;
}

class VersionBuffer {
  x: Float32Array = new Float32Array(0);
  readonly rowPredictions = new Float32Array(DRIFT_BUFFER_ROWS);
  readonly predictions = new Float64Array(DRIFT_BUFFER_REQUESTS);
  readonly failed = new Uint8Array(DRIFT_BUFFER_REQUESTS);
  features = -1;
  rows = 0;
  requests = 0;
  dropped = 0;

  constructor(readonly model: string, readonly version: string) {}

  take(): DriftBatch | undefined {
    if (this.requests === 0 && this.dropped === 0) return undefined;
    const f = Math.max(this.features, 0);
    const out: DriftBatch = {
      model: this.model, version: this.version, features: f, rows: this.rows,
      x: this.x.slice(0, this.rows * f), rowPredictions: this.rowPredictions.slice(0, this.rows),
      requests: this.requests, predictions: this.predictions.slice(0, this.requests), failed: this.failed.slice(0, this.requests),
      dropped: this.dropped,
    };
    this.rows = 0;
    this.requests = 0;
    this.dropped = 0;
    return out;
  }
}

/** Gap to the next sampled request: 1 + a geometric draw with success probability `rate`. */
function gap(rate: number): number {
  if (rate >= 1) return 1;
  return 1 + Math.floor(Math.log(1 - Math.random()) / Math.log(1 - rate));
}

export class DriftSampler {
  private countdown: number;
  private readonly buffers = new Map<string, VersionBuffer>();
  /** The last answer's version and buffer: consecutive samples mostly go to the same version. */
  private lastManifest: Manifest | undefined;
  private lastBuffer: VersionBuffer | undefined;

  constructor(readonly rate: number) {
    this.countdown = gap(rate);
  }

  /** Whether this request is sampled (call once per request; the draw is made here). */
  draw(): boolean {
    if (--this.countdown > 0) return false;
    this.countdown = gap(this.rate);
    return true;
  }

  private bufferOf(model: string, version: string): VersionBuffer {
    const key = model + '\0' + version;
    let b = this.buffers.get(key);
    if (!b) this.buffers.set(key, (b = new VersionBuffer(model, version)));
    return b;
  }

  /**
   * A sampled answer of `rows` rows: `inputs` as the request sent them (the signature's first
   * input is looked up by name), `first` the first output's values.
   */
  answer(manifest: Manifest, inputs: readonly Tensor[], rows: number, first: ArrayLike<number | bigint> | undefined): void {
    try {
      this.record(manifest, inputs, rows, first);
    } catch {
      // Sampling never fails a request: a tensor it cannot read (BYTES, say) is not sampled.
    }
  }

  private record(manifest: Manifest, inputs: readonly Tensor[], rows: number, first: ArrayLike<number | bigint> | undefined): void {
    let b = this.lastBuffer;
    if (manifest !== this.lastManifest || b === undefined) {
      // A joined key and a Map lookup cost ~0.2 us: paid only when the version changes.
      b = this.lastBuffer = this.bufferOf(manifest.name, manifest.version);
      this.lastManifest = manifest;
    }
    if (b.requests >= DRIFT_BUFFER_REQUESTS) {
      b.dropped++;
      return;
    }
    const outPerRow = first && rows > 0 ? first.length / rows : 0;
    let sum = 0;
    if (first) for (let i = 0; i < first.length; i++) sum += Number(first[i]);
    b.predictions[b.requests] = first && first.length > 0 ? sum / first.length : NaN;
    b.failed[b.requests] = 0;
    b.requests++;
    const name = manifest.signature.inputs[0]?.name;
    const input = inputs.find((t) => t.name === name) ?? inputs[0];
    if (!input || rows < 1) return;
    const data = input.data;
    const perRow = data.length / rows;
    if (!Number.isInteger(perRow) || perRow < 1) return;
    // A version's row width is fixed by its signature; the first sample decides it here.
    if (b.features < 0) {
      b.features = Math.min(perRow, DRIFT_MAX_FEATURES);
      b.x = new Float32Array(DRIFT_BUFFER_ROWS * b.features);
    }
    const f = b.features;
    // A signature with a free width may send narrower rows later: those are not comparable.
    if (perRow < f) return;
    const take = Math.min(rows, DRIFT_ROWS_PER_REQUEST, DRIFT_BUFFER_ROWS - b.rows);
    const native = ArrayBuffer.isView(data) && !(data instanceof BigInt64Array || data instanceof BigUint64Array);
    for (let r = 0; r < take; r++) {
      const at = (b.rows + r) * f;
      // A typed array of numbers converts to float32 in one native copy; 64-bit integers one by one.
      if (native) b.x.set((data as Float32Array).subarray(r * perRow, r * perRow + f), at);
      else for (let j = 0; j < f; j++) b.x[at + j] = Number((data as ArrayLike<number | bigint>)[r * perRow + j]);
      b.rowPredictions[b.rows + r] = outPerRow >= 1 ? Number(first![r * outPerRow]) : NaN;
    }
    b.rows += take;
  }

  /** A sampled request to this version that failed. */
  failure(model: string, version: string): void {
    const b = this.bufferOf(model, version);
    if (b.requests >= DRIFT_BUFFER_REQUESTS) {
      b.dropped++;
      return;
    }
    b.predictions[b.requests] = NaN;
    b.failed[b.requests] = 1;
    b.requests++;
  }

  /** Everything sampled since the last call, per version (copies; the buffers start again). */
  take(): DriftBatch[] {
    const out: DriftBatch[] = [];
    for (const b of this.buffers.values()) {
      const batch = b.take();
      if (batch) out.push(batch);
    }
    return out;
  }
}
