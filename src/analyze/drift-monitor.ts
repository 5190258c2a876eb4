/**
 * Drift and data-quality monitoring per model version (issue #15, item 3), on the main thread,
 * over the samples the I/O threads take on the request path (drift-sampler.ts).
 *
 * Reference: a version's first `referenceRows` sampled rows. From them, per feature and for the
 * prediction (the first output's first value per row): the PSI bins and counts (psi.ts), the
 * values themselves as the KS reference, in a seeded random order, and the data-quality baseline
 * (missing share, [min, max]: data-quality.ts).
 *
 * Window: the rows sampled after the reference, restarted every `windowMs`; per feature and for
 * the prediction a PSI histogram over the reference's bins, a seeded reservoir of up to
 * `referenceRows` values (ks.ts compares it with as many reference values: equal sizes take the
 * O(n) exact formula), and counts of missing and out-of-range values. The window judged is the
 * current one once it holds DRIFT_MIN_WINDOW_ROWS rows, else the previous one (so a restart does
 * not blank the figures); below that many rows PSI and KS are not judged at all (with 10 bins,
 * PSI's own noise is about 9 (1/n + 1/N): 0.05 at n = 200, 0.1 at n = 100, too close to 0.25 to
 * judge a hundred features on).
 *
 * Streams: every sampled request, in the order the collections bring them (each thread's in its
 * own order, threads one after another within a collection), feeds ADWIN and Page-Hinkley twice:
 * the mean of its first output (successful requests only) and its error indicator (1 failed, 0
 * answered). The error stream is the SAMPLED requests', not every request's: the version's
 * windowed metrics (src/metrics/windows.ts) count every request already; here it is one more
 * change detector on the same footing as the prediction stream.
 *
 * Recent predictions: each version also keeps its last RECENT_PREDICTIONS sampled predictions with
 * the time they were collected, so that the canary judge can compare two versions' predictions
 * over the same window (predictionsSince; src/control/deployments/judge.ts, the drift check).
 *
 * `drifted` (per version): some feature's or the prediction's PSI >= 0.25, or its KS p-value <
 * 0.001 / m with m = features + 1 (Bonferroni over the m series tested, so a version of 100
 * stationary features still raises a false alarm with probability <= 0.001 per look), or an
 * ADWIN or Page-Hinkley detection on either stream within the last `windowMs`.
 */
import { Adwin } from '../learn/adwin.js';
import { featureBaseline, type FeatureBaseline } from './data-quality.js';
import { ksTwoSample } from './ks.js';
import { PageHinkley } from './page-hinkley.js';
import { PSI_LEVELS, PsiHistogram, psiReference, type PsiLevel, type PsiReference } from './psi.js';
import { Reservoir } from './reservoir.js';
import { mulberry32 } from '../random.js';
import type { DriftBatch } from './drift-sampler.js';

export const DRIFT_PSI_THRESHOLD = PSI_LEVELS.significant;
/** Family-wise KS level per version, split over its series (Bonferroni). */
export const DRIFT_KS_ALPHA = 0.001;
/** Rows a window needs before its PSI and KS are judged (see the header). */
export const DRIFT_MIN_WINDOW_ROWS = 200;
/** Sampled predictions each version keeps for predictionsSince (the canary judge's drift check). */
export const RECENT_PREDICTIONS = 1_000;
/** How often the engine collects the I/O threads' samples (ms). */
export const DRIFT_COLLECT_MS = 1_000;
/**
 * How old an evaluation /metrics and driftDetected may use (ms). An evaluation of a version of
 * 100 features takes ~15 ms of the main thread (sorting for KS, mostly), and every reader of
 * whole-server metrics (experiments, performance rows) builds the exposition lines: re-evaluating
 * for each would add up. The drift API always evaluates what was collected.
 */
export const DRIFT_STALE_MS = 5_000;

export interface DriftMonitorOptions {
  referenceRows: number;
  windowMs: number;
  /** Seeds the reservoirs and the reference's order (replayable runs). */
  seed?: number;
  /** Wall clock (ms); tests pass their own. */
  now?: () => number;
}

/** One series' figures over the judged window (null: not judged, too few values). */
export interface SeriesDrift {
  psi: number | null;
  psi_level: PsiLevel | null;
  ks_d: number | null;
  ks_p: number | null;
  /** Missing (NaN) values in the window. */
  missing: number;
  /** Present values outside the reference's [min, max]. */
  out_of_range: number;
}

export interface FeatureDrift extends SeriesDrift {
  index: number;
}

export interface DetectorDrift {
  /** Detections on both streams since the version's first sample. */
  detections: number;
  /** Wall-clock ms of the last one (null: none). */
  last_at: number | null;
  prediction: { detections: number; last_at: number | null };
  errors: { detections: number; last_at: number | null };
}

export interface VersionDriftReport {
  version: string;
  /** collecting_reference until referenceRows rows were sampled, then monitoring. */
  state: 'collecting_reference' | 'monitoring';
  reference_rows: number;
  /** Rows in the window judged (0 while collecting the reference). */
  window_rows: number;
  window_started_at: number | null;
  sampled_requests: number;
  sampled_failures: number;
  /** Sampled requests the threads' buffers could not keep. */
  dropped: number;
  features: FeatureDrift[];
  prediction: SeriesDrift | null;
  adwin: DetectorDrift;
  page_hinkley: DetectorDrift;
  drifted: boolean;
  /** Why it drifted, one line per finding ("feature 3: psi 0.41 >= 0.25"). */
  reasons: string[];
}

export interface ModelDriftReport {
  model: string;
  versions: VersionDriftReport[];
}

/** What the alert signals ask (the canary judge compares predictions: predictionsSince). */
export interface DriftSignal {
  driftDetected(model: string, version: string): boolean;
}

/** One feature (or the prediction) of a version: reference and the window parts. */
interface Series {
  /** PSI bins and counts; null when every reference value was missing (nothing to bin). */
  bins: PsiReference | null;
  /** Present reference values in a seeded random order: any prefix is a uniform sample of them. */
  referenceValues: Float64Array;
  baseline: FeatureBaseline;
}

/** A window's per-series state: parallel to the version's series. */
class Window {
  startedAt = 0;
  rows = 0;
  readonly histograms: Array<PsiHistogram | null>;
  readonly reservoirs: Reservoir[];
  readonly missing: Float64Array;
  readonly outOfRange: Float64Array;

  constructor(series: Series[], capacity: number, seed: number) {
    this.histograms = series.map((s) => (s.bins ? new PsiHistogram(s.bins) : null));
    this.reservoirs = series.map((_, i) => new Reservoir(capacity, (seed + i * 7919) | 0));
    this.missing = new Float64Array(series.length);
    this.outOfRange = new Float64Array(series.length);
  }

  restart(at: number): void {
    this.startedAt = at;
    this.rows = 0;
    for (const h of this.histograms) h?.reset();
    for (const r of this.reservoirs) r.clear();
    this.missing.fill(0);
    this.outOfRange.fill(0);
  }
}

class StreamDetectors {
  readonly adwin = new Adwin();
  readonly ph = new PageHinkley();
  adwinLast: number | null = null;
  phLast: number | null = null;

  add(x: number, at: number): void {
    if (this.adwin.update(x)) this.adwinLast = at;
    if (this.ph.update(x)) this.phLast = at;
  }
}

function shuffled(values: Float64Array, random: () => number): Float64Array {
  const out = values.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = out[i]!;
    out[i] = out[j]!;
    out[j] = t;
  }
  return out;
}

function detector(prediction: StreamDetectors, errors: StreamDetectors, which: 'adwin' | 'ph'): DetectorDrift {
  const p = { detections: which === 'adwin' ? prediction.adwin.nDetections : prediction.ph.nDetections, last_at: which === 'adwin' ? prediction.adwinLast : prediction.phLast };
  const e = { detections: which === 'adwin' ? errors.adwin.nDetections : errors.ph.nDetections, last_at: which === 'adwin' ? errors.adwinLast : errors.phLast };
  const last = Math.max(p.last_at ?? -Infinity, e.last_at ?? -Infinity);
  return { detections: p.detections + e.detections, last_at: Number.isFinite(last) ? last : null, prediction: p, errors: e };
}

/** The last `capacity` values with their times (ms), oldest overwritten first. */
class RecentValues {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.values = new Float64Array(capacity);
    this.times = new Float64Array(capacity);
  }

  add(x: number, at: number): void {
    this.values[this.next] = x;
    this.times[this.next] = at;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
  }

  /** The values added at or after `sinceMs`, oldest first. */
  since(sinceMs: number): Float64Array {
    const out: number[] = [];
    for (let k = this.size; k >= 1; k--) {
      const i = (this.next - k + this.capacity) % this.capacity;
      if (this.times[i]! >= sinceMs) out.push(this.values[i]!);
    }
    return Float64Array.from(out);
  }
}

/** Drift state of one version. */
class VersionDrift {
  /** Features per row: the first sampled rows' width (-1 until a sample with rows came). */
  private features = -1;
  private referenceX = new Float64Array(0);
  private readonly referencePred: Float64Array;
  private referenceRows = 0;
  private series: Series[] | undefined;
  private current: Window | undefined;
  private previous: Window | undefined;
  private readonly predictions = new StreamDetectors();
  private readonly errors = new StreamDetectors();
  readonly recent = new RecentValues(RECENT_PREDICTIONS);
  private sampled = 0;
  private failures = 0;
  private dropped = 0;
  /** Bumped by every change; the evaluation is cached against it. */
  private changes = 0;
  private cached: { changes: number; at: number; report: VersionDriftReport } | undefined;

  constructor(readonly version: string, private readonly opts: Required<DriftMonitorOptions>) {
    this.referencePred = new Float64Array(opts.referenceRows);
  }

  ingest(b: DriftBatch, now: number): void {
    this.changes++;
    this.sampled += b.requests;
    this.dropped += b.dropped;
    for (let i = 0; i < b.requests; i++) {
      if (b.failed[i] === 1) {
        this.failures++;
        this.errors.add(1, now);
        continue;
      }
      this.errors.add(0, now);
      const p = b.predictions[i]!;
      if (Number.isFinite(p)) {
        this.predictions.add(p, now);
        this.recent.add(p, now);
      }
    }
    if (b.rows === 0) return;
    if (this.features < 0) {
      this.features = b.features;
      this.referenceX = new Float64Array(this.opts.referenceRows * b.features);
    }
    // Rows of another width than the version's first (a free-width signature) are not comparable.
    if (b.features !== this.features) return;
    for (let r = 0; r < b.rows; r++) this.addRow(b.x, r * this.features, b.rowPredictions[r]!, now);
  }

  private addRow(x: Float32Array, at: number, prediction: number, now: number): void {
    const f = this.features;
    if (this.series === undefined) {
      this.referenceX.set(x.subarray(at, at + f), this.referenceRows * f);
      this.referencePred[this.referenceRows] = prediction;
      if (++this.referenceRows === this.opts.referenceRows) this.freezeReference(now);
      return;
    }
    const w = this.windowAt(now);
    w.rows++;
    for (let j = 0; j <= f; j++) {
      const v = j < f ? x[at + j]! : prediction;
      if (Number.isNaN(v)) {
        w.missing[j]!++;
        continue;
      }
      const base = this.series[j]!.baseline;
      if (base.min === null || v < base.min || v > base.max!) w.outOfRange[j]!++;
      w.histograms[j]?.add(v);
      w.reservoirs[j]!.add(v);
    }
  }

  private freezeReference(now: number): void {
    const n = this.opts.referenceRows;
    const f = this.features;
    const random = mulberry32(this.opts.seed);
    const column = new Float64Array(n);
    const series: Series[] = [];
    for (let j = 0; j <= f; j++) {
      for (let r = 0; r < n; r++) column[r] = j < f ? this.referenceX[r * f + j]! : this.referencePred[r]!;
      const baseline = featureBaseline(column);
      const present = column.filter((v) => !Number.isNaN(v));
      series.push({
        bins: present.length > 0 ? psiReference(present) : null,
        referenceValues: shuffled(present, random),
        baseline,
      });
    }
    this.series = series;
    this.current = new Window(series, n, this.opts.seed + 1);
    this.current.restart(now);
  }

  /** The current window, restarted first when its time is up (the old one becomes the previous). */
  private windowAt(now: number): Window {
    const w = this.current!;
    if (now - w.startedAt < this.opts.windowMs) return w;
    const spare = this.previous ?? new Window(this.series!, this.opts.referenceRows, this.opts.seed + 2);
    this.previous = w;
    this.current = spare;
    spare.restart(now);
    this.changes++;
    return spare;
  }

  private judged(): Window | undefined {
    const min = Math.min(DRIFT_MIN_WINDOW_ROWS, this.opts.referenceRows);
    if (this.current && this.current.rows >= min) return this.current;
    if (this.previous && this.previous.rows >= min) return this.previous;
    return this.current;
  }

  /** The figures now, or an evaluation up to `maxAgeMs` old. */
  report(now: number, maxAgeMs = 0): VersionDriftReport {
    if (this.series) this.windowAt(now);
    const c = this.cached;
    // Detections age out of "the last window" with time alone: unchanged, it holds for a second.
    if (c && (now - c.at < maxAgeMs || (c.changes === this.changes && now - c.at < 1_000))) return c.report;
    const report = this.evaluate(now);
    this.cached = { changes: this.changes, at: now, report };
    return report;
  }

  private evaluate(now: number): VersionDriftReport {
    const adwin = detector(this.predictions, this.errors, 'adwin');
    const pageHinkley = detector(this.predictions, this.errors, 'ph');
    const reasons: string[] = [];
    const recent = (at: number | null) => at !== null && now - at <= this.opts.windowMs;
    for (const [name, d] of [['adwin', adwin], ['page_hinkley', pageHinkley]] as const) {
      if (recent(d.prediction.last_at)) reasons.push(`${name}: change in the prediction stream`);
      if (recent(d.errors.last_at)) reasons.push(`${name}: change in the error stream`);
    }
    const base = {
      version: this.version, reference_rows: this.referenceRows, sampled_requests: this.sampled, sampled_failures: this.failures,
      dropped: this.dropped, adwin, page_hinkley: pageHinkley,
    };
    const w = this.judged();
    if (!this.series || !w) {
      return { ...base, state: 'collecting_reference', window_rows: 0, window_started_at: null, features: [], prediction: null, drifted: reasons.length > 0, reasons };
    }
    const judge = w.rows >= Math.min(DRIFT_MIN_WINDOW_ROWS, this.opts.referenceRows);
    const ksLevel = DRIFT_KS_ALPHA / this.series.length;
    const figures = this.series.map((s, j) => {
      const out: SeriesDrift = { psi: null, psi_level: null, ks_d: null, ks_p: null, missing: w.missing[j]!, out_of_range: w.outOfRange[j]! };
      const label = j < this.features ? `feature ${j}` : 'prediction';
      const psi = judge ? w.histograms[j]?.result() : null;
      if (psi) {
        out.psi = psi.psi;
        out.psi_level = psi.level;
        if (psi.psi >= DRIFT_PSI_THRESHOLD) reasons.push(`${label}: psi ${psi.psi.toFixed(3)} >= ${DRIFT_PSI_THRESHOLD}`);
      }
      const current = w.reservoirs[j]!.values();
      const k = Math.min(current.length, s.referenceValues.length);
      if (judge && k > 0) {
        // Equal sizes (ks.ts): as many reference values as the window holds, a uniform sample of them.
        const ks = ksTwoSample(s.referenceValues.subarray(0, k), current.subarray(0, k));
        out.ks_d = ks.statistic;
        out.ks_p = ks.p;
        if (ks.p < ksLevel) reasons.push(`${label}: ks p ${ks.p.toExponential(2)} < ${ksLevel.toExponential(2)}`);
      }
      return out;
    });
    const prediction = figures.pop()!;
    return {
      ...base, state: 'monitoring', window_rows: w.rows, window_started_at: w.startedAt,
      features: figures.map((f, index) => ({ index, ...f })), prediction, drifted: reasons.length > 0, reasons,
    };
  }
}

export class DriftMonitor implements DriftSignal {
  private readonly opts: Required<DriftMonitorOptions>;
  /** By model, then version. */
  private readonly models = new Map<string, Map<string, VersionDrift>>();

  constructor(opts: DriftMonitorOptions) {
    this.opts = { seed: 1, now: Date.now, ...opts };
  }

  /** A thread's samples of one version. */
  ingest(batch: DriftBatch): void {
    let versions = this.models.get(batch.model);
    if (!versions) this.models.set(batch.model, (versions = new Map()));
    let v = versions.get(batch.version);
    if (!v) versions.set(batch.version, (v = new VersionDrift(batch.version, this.opts)));
    v.ingest(batch, this.opts.now());
  }

  /** Whether the monitor has samples of this model. */
  has(model: string): boolean {
    return this.models.has(model);
  }

  /**
   * Every sampled version of `model` (none yet: an empty list), evaluated now or, with
   * `maxAgeMs`, as evaluated up to that long ago (the dashboard's reading every second would
   * otherwise evaluate every feature again each time samples arrived).
   */
  report(model: string, maxAgeMs = 0): ModelDriftReport {
    const now = this.opts.now();
    const versions = [...(this.models.get(model)?.values() ?? [])].map((v) => v.report(now, maxAgeMs));
    return { model, versions };
  }

  /** `version`'s sampled predictions collected at or after `sinceMs` (at most RECENT_PREDICTIONS, the latest). */
  predictionsSince(model: string, version: string, sinceMs: number): Float64Array {
    return this.models.get(model)?.get(version)?.recent.since(sinceMs) ?? new Float64Array(0);
  }

  /**
   * The alerts' question: is this version drifting now (as of an
   * evaluation at most DRIFT_STALE_MS old)? False when unknown.
   */
  driftDetected(model: string, version: string): boolean {
    return this.models.get(model)?.get(version)?.report(this.opts.now(), DRIFT_STALE_MS).drifted ?? false;
  }

  /** Prometheus lines: PSI per feature and prediction, and the drifted flag, per version. */
  metricLines(): string[] {
    const now = this.opts.now();
    const psi: string[] = [];
    const detected: string[] = [];
    for (const [model, versions] of this.models) {
      for (const [version, v] of versions) {
        const r = v.report(now, DRIFT_STALE_MS);
        const labels = `model=${JSON.stringify(model)},version=${JSON.stringify(version)}`;
        detected.push(`sluice_drift_detected{${labels}} ${r.drifted ? 1 : 0}`);
        for (const f of r.features) if (f.psi !== null) psi.push(`sluice_drift_psi{${labels},feature="${f.index}"} ${f.psi}`);
        if (r.prediction?.psi != null) psi.push(`sluice_drift_psi{${labels},feature="prediction"} ${r.prediction.psi}`);
      }
    }
    if (detected.length === 0) return [];
    return [
      '# HELP sluice_drift_psi Population stability index of a version\'s recent sampled rows against its reference, per feature ("prediction": its first output).',
      '# TYPE sluice_drift_psi gauge',
      ...psi,
      '# HELP sluice_drift_detected 1 when a version drifted (PSI >= 0.25, KS p below 0.001 Bonferroni-split, or an ADWIN / Page-Hinkley change in the last window).',
      '# TYPE sluice_drift_detected gauge',
      ...detected,
    ];
  }
}
