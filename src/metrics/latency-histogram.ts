/**
 * The precision every latency histogram shares (microseconds, three significant digits, 1 us to
 * 60 s): a version's lifetime histogram and its window buckets (windows.ts) are built here, so
 * their counts arrays index the same values and merge exactly (histogram-snapshot.ts).
 */
import * as hdr from 'hdr-histogram-js';

export const LATENCY_MAX_US = 60_000_000;

export function histogram(highest: number): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: highest, numberOfSignificantValueDigits: 3 });
}

export function latencyHistogram(): hdr.Histogram {
  return histogram(LATENCY_MAX_US);
}

/** A latency in fractional milliseconds as the whole microseconds a histogram records (at least 1). */
export function latencyUs(ms: number): number {
  return Math.max(1, Math.round(ms * 1000));
}
