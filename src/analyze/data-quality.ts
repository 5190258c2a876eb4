/**
 * Data quality of a sample of requests against a baseline taken from the reference window:
 * per feature, how many values are missing (NaN) and how many fall outside the reference's
 * [min, max] (optionally widened by a tolerance, as a share of the reference's range), and how
 * that compares with the reference's own missing share.
 *
 * Pure functions over columns (feature name -> values); the server decides which requests form
 * the reference and the sample. Infinities are values, not missing: they count as out of range.
 */
import { SluiceError } from '../errors.js';

/** What the reference said about one feature. */
export interface FeatureBaseline {
  /** Values seen, missing included. */
  count: number;
  missing: number;
  /** Smallest and largest present value; null when every value was missing. */
  min: number | null;
  max: number | null;
}

export type QualityBaseline = Record<string, FeatureBaseline>;

export interface FeatureQuality {
  count: number;
  missing: number;
  missingShare: number;
  /** The reference's missing share, for comparison. */
  baselineMissingShare: number;
  belowMin: number;
  aboveMax: number;
  outOfRange: number;
  /** Out-of-range values over present values (0 when none is present). */
  outOfRangeShare: number;
}

export interface QualityReport {
  features: Record<string, FeatureQuality>;
  summary: {
    /** Values checked, all features together. */
    values: number;
    missing: number;
    outOfRange: number;
    /** Features whose missing share exceeds the reference's. */
    featuresWithMoreMissing: string[];
    /** Features with at least one value out of range. */
    featuresOutOfRange: string[];
    /** In the baseline but absent from the sample. */
    absentFeatures: string[];
    /** In the sample but not in the baseline (not checked). */
    unknownFeatures: string[];
  };
}

export interface QualityOptions {
  /** Widens [min, max] by this share of (max - min) on each side; 0 = the reference's exact range. */
  rangeTolerance?: number;
}

export type Columns = Record<string, ArrayLike<number>>;

function invalid(message: string): never {
  throw new SluiceError('INVALID_ARGUMENT', `data_quality: ${message}`);
}

function checkColumn(name: string, values: ArrayLike<number>): void {
  if (values === null || typeof values !== 'object' || typeof values.length !== 'number') invalid(`feature ${name} is not an array of numbers`);
}

/** The baseline of one feature's reference values. */
export function featureBaseline(values: ArrayLike<number>): FeatureBaseline {
  let missing = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v !== 'number') invalid(`value at ${i} is not a number`);
    if (Number.isNaN(v)) {
      missing++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const present = values.length - missing;
  return { count: values.length, missing, min: present > 0 ? min : null, max: present > 0 ? max : null };
}

/** A baseline for every feature of the reference columns. */
export function qualityBaseline(reference: Columns): QualityBaseline {
  const out: QualityBaseline = {};
  for (const [name, values] of Object.entries(reference)) {
    checkColumn(name, values);
    out[name] = featureBaseline(values);
  }
  return out;
}

function share(part: number, whole: number): number {
  return whole === 0 ? 0 : part / whole;
}

/** One feature's sample against its baseline. */
export function featureQuality(baseline: FeatureBaseline, values: ArrayLike<number>, options: QualityOptions = {}): FeatureQuality {
  const tolerance = options.rangeTolerance ?? 0;
  if (!(Number.isFinite(tolerance) && tolerance >= 0)) invalid(`rangeTolerance ${tolerance} must be a finite number >= 0`);
  const span = baseline.min !== null && baseline.max !== null ? baseline.max - baseline.min : 0;
  // A feature never seen present has no range: every present value is out of it.
  const low = baseline.min === null ? Infinity : baseline.min - tolerance * span;
  const high = baseline.max === null ? -Infinity : baseline.max + tolerance * span;
  let missing = 0;
  let belowMin = 0;
  let aboveMax = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v !== 'number') invalid(`value at ${i} is not a number`);
    if (Number.isNaN(v)) missing++;
    else if (v < low) belowMin++;
    else if (v > high) aboveMax++;
  }
  const outOfRange = belowMin + aboveMax;
  return {
    count: values.length,
    missing,
    missingShare: share(missing, values.length),
    baselineMissingShare: share(baseline.missing, baseline.count),
    belowMin,
    aboveMax,
    outOfRange,
    outOfRangeShare: share(outOfRange, values.length - missing),
  };
}

/** Every baseline feature's sample against it, and a summary. */
export function dataQuality(baseline: QualityBaseline, sample: Columns, options: QualityOptions = {}): QualityReport {
  const features: Record<string, FeatureQuality> = {};
  const summary: QualityReport['summary'] = {
    values: 0, missing: 0, outOfRange: 0, featuresWithMoreMissing: [], featuresOutOfRange: [], absentFeatures: [], unknownFeatures: [],
  };
  for (const [name, base] of Object.entries(baseline)) {
    const values = Object.hasOwn(sample, name) ? sample[name] : undefined;
    if (values === undefined) {
      summary.absentFeatures.push(name);
      continue;
    }
    checkColumn(name, values);
    const q = featureQuality(base, values, options);
    features[name] = q;
    summary.values += q.count;
    summary.missing += q.missing;
    summary.outOfRange += q.outOfRange;
    if (q.missingShare > q.baselineMissingShare) summary.featuresWithMoreMissing.push(name);
    if (q.outOfRange > 0) summary.featuresOutOfRange.push(name);
  }
  for (const name of Object.keys(sample)) if (!Object.hasOwn(baseline, name)) summary.unknownFeatures.push(name);
  return { features, summary };
}
