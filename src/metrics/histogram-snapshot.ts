/**
 * An HDR histogram as structured-clonable data, and added back into another, exactly.
 *
 * The snapshot is a copy of the histogram's counts array up to the bucket of the largest value
 * recorded (a Uint32Array: one memory copy to take, one to clone through postMessage), plus the
 * exact min and max. Adding it into a histogram of the same precision adds count to count at the
 * same index, which is what the library's own `add` does for such histograms, so every
 * percentile, the mean and the total of the merge are exactly those of one histogram that had
 * recorded everything. Alternatives measured (`npm run bench -- metrics-merge`, 20 versions with
 * 5,000 requests each over 0.05-50 ms, 2 threads, on the loaded 2-core machine):
 * - hdr-histogram-js's `encodeIntoCompressedBase64`: zlib and base64 per histogram per scrape,
 *   then inflate and ZigZag decoding on the main thread (its JS histograms have no uncompressed
 *   encoder); not pursued;
 * - (value, count) of each non-empty bucket in plain arrays, re-recorded with
 *   recordValueWithCount: exact, but 23 ms per thread to take, 53 ms to clone (element by
 *   element) and 0.15 s to merge; with 3 significant digits (~2,000 buckets per decade) a few
 *   thousand requests fill a few thousand buckets, so it was not smaller either;
 * - (index, count) of the non-empty buckets in typed arrays: 6-9 ms per thread to take (two
 *   scans with a call per slot), against 1-3 ms for this copy, for a merge about as fast.
 * The snapshot runs on the I/O thread between its requests, so its cost is the one that counts.
 * Size: 4 bytes a slot, ~26 KiB for a latency histogram reaching 50 ms, ~70 KiB at most (60 s),
 * whatever the number of requests.
 */
import * as hdr from 'hdr-histogram-js';
import { SluiceError } from '../errors.js';

export interface HistogramSnapshot {
  /** Precision of the histogram taken: bucket indexes mean the same only between equal ones. */
  lowest: number;
  digits: number;
  /** A copy of the counts array from index 0 to the largest value's bucket (empty when none). */
  counts: Uint32Array;
  /** The smallest non-zero and the largest value recorded (0 when none). */
  min: number;
  max: number;
}

/**
 * The histogram and its counts array: hdr.build() without useWebAssembly, and with the default
 * 32-bit buckets as VersionMetrics builds them, makes a JsHistogram over a Uint32Array
 * (`_counts`, declared public in the library's TypedArrayHistogram typings).
 */
function js(h: hdr.Histogram): { j: hdr.JsHistogram; counts: Uint32Array } {
  const counts = (h as unknown as { _counts?: unknown })._counts;
  if (!(h instanceof hdr.JsHistogram) || !(counts instanceof Uint32Array)) {
    throw new SluiceError('INTERNAL', 'metrics: only JavaScript HDR histograms over 32-bit counts can be snapshot');
  }
  return { j: h, counts };
}

export function snapshotHistogram(h: hdr.Histogram): HistogramSnapshot {
  const { j, counts } = js(h);
  const base = { lowest: j.lowestDiscernibleValue, digits: j.numberOfSignificantValueDigits };
  if (j.totalCount === 0) return { ...base, counts: new Uint32Array(0), min: 0, max: 0 };
  const end = Math.min(j.countsArrayIndex(j.maxValue) + 1, counts.length);
  // maxValue is kept with the unit mask added (0 for Sluice's histograms, whose lowest value is 1).
  const max = j.maxValue - j.unitMagnitudeMask;
  const min = j.minNonZeroValue <= j.maxValue ? j.minNonZeroValue : 0;
  return { ...base, counts: counts.slice(0, end), min, max };
}

/** Adds a snapshot into `h`: the same counts as `h.add(original)`, without the original. */
export function addHistogramSnapshot(h: hdr.Histogram, s: HistogramSnapshot): void {
  const { j } = js(h);
  if (j.lowestDiscernibleValue !== s.lowest || j.numberOfSignificantValueDigits !== s.digits) {
    throw new SluiceError('INTERNAL', `metrics: cannot merge a histogram of precision ${s.lowest}/${s.digits} into one of ${j.lowestDiscernibleValue}/${j.numberOfSignificantValueDigits}`);
  }
  const n = s.counts.length;
  if (n === 0) return;
  // A thread's histogram may have grown past 60 s (autoResize): grow this one alike.
  if (n > j.countsArrayLength) j.resize(s.max);
  const to = js(h).counts; // after any resize, which replaces the array
  const from = s.counts;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const c = from[i]!;
    to[i] = to[i]! + c;
    total += c;
  }
  j.setTotalCount(j.totalCount + total);
  j.updateMinAndMax(s.max);
  if (s.min > 0) j.updateMinAndMax(s.min);
}
