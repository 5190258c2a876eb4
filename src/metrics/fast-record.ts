/**
 * HDR recording cheap enough for the request path. hdr-histogram-js 3.0.1's recordValue finds
 * a value's bucket with Math.log2, Math.floor and Math.pow: ~27 ns a value in `npm run bench --
 * routing-pick`, against ~5 ns for `recordFast` (0.19x), which finds the same
 * bucket with integer operations (Math.clz32 and shifts) and updates the same fields the library
 * does (the counts array, total count, min and max), so the histogram cannot tell the
 * difference: test/unit/fast-record.test.ts compares it with recordValue bucket by bucket. A
 * value that is not a whole number from 1 to 2^31 - 1, or lies past the counts array (a request
 * over 60 s: the histogram grows), goes to recordValue itself.
 *
 * It reads the library's own fields (declared public in its typings), like histogram-snapshot.ts;
 * the package is pinned exactly in package.json, and the test fails if a new version moves them.
 */
import * as hdr from 'hdr-histogram-js';
import { SluiceError } from '../errors.js';

type Counted = hdr.JsHistogram & { _counts: Uint32Array };

/** The histogram, checked once to be one `recordFast` can record into. */
export function fastRecordable(h: hdr.Histogram): Counted {
  const counts = (h as unknown as { _counts?: unknown })._counts;
  if (!(h instanceof hdr.JsHistogram) || !(counts instanceof Uint32Array)) {
    throw new SluiceError('INTERNAL', 'metrics: fast recording needs a JavaScript HDR histogram over 32-bit counts');
  }
  return h as Counted;
}

/** `h.recordValue(v)`, without floating-point logarithms and powers. */
export function recordFast(h: Counted, v: number): void {
  if (!(v >= 1 && v <= 0x7fffffff) || Math.floor(v) !== v) return h.recordValue(v);
  const half = h.subBucketHalfCountMagnitude;
  const unit = h.unitMagnitude;
  // floor(log2(v)) is 31 - clz32(v) for a whole v >= 1.
  const bucket = Math.max(31 - Math.clz32(v) - half - unit, 0);
  const sub = v >>> (bucket + unit);
  const index = ((bucket + 1) << half) + sub - h.subBucketHalfCount;
  if (index >= h.countsArrayLength) return h.recordValue(v);
  h._counts[index]!++;
  h.updateMinAndMax(v);
  h.incrementTotalCount();
}
