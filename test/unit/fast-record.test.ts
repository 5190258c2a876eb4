/**
 * recordFast (src/metrics/fast-record.ts) against hdr-histogram-js's own recordValue: after the
 * same values, two histograms hold the same counts array, total, min and max, for every whole
 * value up to 2^18, values spread up to 2^31 - 1, values past the range (the histogram grows),
 * and the odd ones recordValue handles itself (0, fractions), at several precisions.
 */
import * as hdr from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import { fastRecordable, recordFast } from '../../src/metrics/fast-record.js';
import { mulberry32 } from '../helpers/random.js';

function pair(lowest: number, highest: number, digits: 1 | 2 | 3 | 4 | 5) {
  const make = () => fastRecordable(hdr.build({ lowestDiscernibleValue: lowest, highestTrackableValue: highest, numberOfSignificantValueDigits: digits }));
  return { slow: make(), fast: make() };
}

function same(a: ReturnType<typeof fastRecordable>, b: ReturnType<typeof fastRecordable>, what: string): void {
  expect(b.countsArrayLength, what).toBe(a.countsArrayLength);
  expect(b.totalCount, what).toBe(a.totalCount);
  expect(b.maxValue, what).toBe(a.maxValue);
  expect(b.minNonZeroValue, what).toBe(a.minNonZeroValue);
  // Compared whole (one assertion), not element by element.
  expect(Buffer.from(b._counts.buffer, b._counts.byteOffset, b._counts.byteLength).equals(Buffer.from(a._counts.buffer, a._counts.byteOffset, a._counts.byteLength)), what).toBe(true);
  for (const p of [0, 50, 99, 99.9, 100]) expect(b.getValueAtPercentile(p), `${what} p${p}`).toBe(a.getValueAtPercentile(p));
}

describe('recordFast', () => {
  for (const [lowest, highest, digits] of [[1, 60_000_000, 3], [1, 60_000_000, 2], [1, 3_600_000_000, 5], [4, 1_000_000, 3]] as const) {
    it(`records into the same buckets as recordValue (lowest ${lowest}, highest ${highest}, ${digits} digits)`, () => {
      const { slow, fast } = pair(lowest, highest, digits);
      const both = (v: number) => {
        slow.recordValue(v);
        recordFast(fast, v);
      };
      for (let v = 1; v <= 1 << 18; v++) both(v);
      same(slow, fast, 'every value to 2^18');
      const r = mulberry32(lowest * 1000 + digits);
      for (let i = 0; i < 200_000; i++) both(Math.floor(2 ** (r() * 31)));
      for (const v of [2 ** 31 - 1, 2 ** 30, 2 ** 30 - 1, highest, highest - 1, highest + 1]) both(v);
      same(slow, fast, 'values spread to 2^31 - 1 and around the highest trackable');
      for (const v of [0, 1.5, 2 ** 31, 2 ** 40 + 3, 7e11]) both(v);
      same(slow, fast, 'zero, fractions, values past 2^31 and past the range (grown)');
    });
  }

  it('refuses a histogram it cannot record into (one over 16-bit counts)', () => {
    expect(() => fastRecordable(hdr.build({ bitBucketSize: 16 }))).toThrow(/32-bit counts/);
  });
});
