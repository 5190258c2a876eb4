/**
 * Sliding windows of one version's recent requests (issue #15): a ring of time buckets (10 s
 * each, the last 5 minutes by default), each holding the requests, the failures by error code
 * and an HDR histogram of the successful requests' latency, recorded on the I/O thread that
 * answered. Controllers ask "error rate and p99 of version v over the last N seconds" from
 * these, never from lifetime totals (DESIGN.md, Windows).
 *
 * Buckets are aligned on multiples of the bucket length in wall-clock time, so the bucket
 * starting at t on one I/O thread covers the same interval as on every other thread, and a
 * window over [from, to] is the same set of buckets everywhere: summing their counts and
 * histogram counts (same precision as VersionMetrics.latency: latency-histogram.ts) gives
 * exactly what one thread recording every request would hold.
 *
 * On the request path the caller passes the time: the data plane derives it from the clock
 * reading that ended the request's latency (its thread's performance.timeOrigin plus that
 * reading), so a window reads no clock. Recording is a comparison with the current bucket's
 * end, two counters and a few integer operations (see Bucket). Crossing into a new bucket takes
 * the ring's slot for it and resets what that slot held a lap ago: nothing is allocated once
 * every slot has been used once (a slot's 68 KiB counts array is made on its first use, so a
 * version without traffic holds none; 30 of them, ~2 MiB, per version and thread at full use).
 * No timer: a window without traffic keeps stale buckets, which queries tell apart by their
 * start time. A clock that steps back records into the current bucket.
 */
import * as hdr from 'hdr-histogram-js';
import { catalogue, SluiceError } from '../errors.js';
import { fastRecordable } from './fast-record.js';
import { addHistogramSnapshot, snapshotHistogram, type HistogramSnapshot } from './histogram-snapshot.js';
import { latencyHistogram } from './latency-histogram.js';

export const WINDOW_BUCKET_MS = 10_000;
export const WINDOW_BUCKETS = 30;

/** Error codes by index: a bucket counts failures in a typed array, not a Map (no allocation). */
const CODES: readonly string[] = [...Object.keys(catalogue), 'OTHER'];
const CODE_INDEX = new Map(CODES.map((c, i) => [c, i]));
const OTHER = CODES.length - 1;

/**
 * A bucket's latency is a bare counts array laid out as a latency histogram's (the same index
 * for the same value, computed with integer operations as fast-record.ts does), its count, min
 * and max kept beside it: recording is a few integer operations and calls no histogram method.
 * A snapshot of it is what snapshotHistogram would give of a histogram that recorded the same
 * values (test/unit/windows.test.ts compares them).
 */
const LAYOUT = fastRecordable(latencyHistogram());
const HALF = LAYOUT.subBucketHalfCountMagnitude;
const UNIT = LAYOUT.unitMagnitude;
const HALF_COUNT = LAYOUT.subBucketHalfCount;
const LENGTH = LAYOUT.countsArrayLength;

/** The counts index of a whole value from 1 to 2^31 - 1 (hdr's countsArrayIndex, in integers). */
function indexOf(v: number): number {
  const bucket = Math.max(31 - Math.clz32(v) - HALF - UNIT, 0);
  return ((bucket + 1) << HALF) + (v >>> (bucket + UNIT)) - HALF_COUNT;
}

class Bucket {
  /** Wall-clock ms the bucket starts at (a multiple of the bucket length); -1: never used. */
  start = -1;
  requests = 0;
  failures = 0;
  readonly errors = new Uint32Array(CODES.length);
  /** Successful requests' latency (us) by histogram index; made on the slot's first use. */
  counts = new Uint32Array(0);
  /** The successful requests, and their smallest and largest latency (us; 0 when none). */
  latencies = 0;
  min = 0;
  max = 0;

  reset(start: number): void {
    this.start = start;
    this.requests = 0;
    this.failures = 0;
    this.errors.fill(0);
    if (this.counts.length === 0) this.counts = new Uint32Array(LENGTH);
    else this.counts.fill(0);
    this.latencies = 0;
    this.min = 0;
    this.max = 0;
  }

  /** A latency of whole us >= 1 (clamped to 2^31 - 1 us, ~36 minutes). */
  record(us: number): void {
    const v = us <= 0x7fffffff ? us : 0x7fffffff;
    const i = indexOf(v);
    // Past 60 s: the array grows, as an autoResize histogram's would (rare, so allocating).
    if (i >= this.counts.length) this.grow(i + 1);
    this.counts[i]!++;
    if (this.latencies === 0 || v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    this.latencies++;
  }

  private grow(length: number): void {
    const next = new Uint32Array(length);
    next.set(this.counts);
    this.counts = next;
  }

  latencySnapshot(): HistogramSnapshot {
    const base = { lowest: LAYOUT.lowestDiscernibleValue, digits: LAYOUT.numberOfSignificantValueDigits };
    if (this.latencies === 0) return { ...base, counts: new Uint32Array(0), min: 0, max: 0 };
    return { ...base, counts: this.counts.slice(0, indexOf(this.max) + 1), min: this.min, max: this.max };
  }
}

/**
 * A version's requests over [fromMs, toMs] (every bucket overlapping it), as data: structured
 * clone copies it between threads, and `mergeWindowSnapshots` sums several exactly.
 */
export interface WindowSnapshot {
  /** The asked start aligned down on its bucket's start (whole buckets only), and the end asked. */
  fromMs: number;
  toMs: number;
  /** Requests answered or failed, and the failed ones. */
  requests: number;
  errors: number;
  /** Failures by SluiceError code (codes with none left out). */
  errorsByCode: Record<string, number>;
  /** Latency of the successful requests, in microseconds. */
  latency: HistogramSnapshot;
}

export interface WindowOptions {
  bucketMs?: number;
  buckets?: number;
}

export class VersionWindow {
  readonly bucketMs: number;
  readonly buckets: number;
  /** Built on the first request: merged and idle metrics hold no ring. */
  private ring: Bucket[] | undefined;
  private current: Bucket | undefined;
  /** Where the current bucket ends (-Infinity before the first request: it rotates). */
  private end = -Infinity;

  constructor(opts: WindowOptions = {}) {
    this.bucketMs = opts.bucketMs ?? WINDOW_BUCKET_MS;
    this.buckets = opts.buckets ?? WINDOW_BUCKETS;
    if (!Number.isSafeInteger(this.bucketMs) || this.bucketMs < 1 || !Number.isSafeInteger(this.buckets) || this.buckets < 1) {
      throw new SluiceError('INTERNAL', `metrics: a window needs whole positive bucket length and count (got ${this.bucketMs} ms x ${this.buckets})`);
    }
  }

  /** How far back the window reaches, in ms. */
  get retentionMs(): number {
    return this.bucketMs * this.buckets;
  }

  /** A successful request that took `us` (whole microseconds >= 1), answered at `nowMs` (Date.now()). */
  recordSuccess(us: number, nowMs: number): void {
    const b = nowMs >= this.end ? this.rotate(nowMs) : this.current!;
    b.requests++;
    b.record(us);
  }

  /** A failed request, with the code its client got, at `nowMs`. */
  recordFailure(code: string, nowMs: number): void {
    const b = nowMs >= this.end ? this.rotate(nowMs) : this.current!;
    b.requests++;
    b.failures++;
    b.errors[CODE_INDEX.get(code) ?? OTHER]!++;
  }

  /** Makes the bucket holding `nowMs` current, resetting its slot if it held an older bucket. */
  private rotate(nowMs: number): Bucket {
    this.ring ??= Array.from({ length: this.buckets }, () => new Bucket());
    const index = Math.floor(nowMs / this.bucketMs);
    const start = index * this.bucketMs;
    const b = this.ring[index % this.buckets]!;
    if (b.start !== start) b.reset(start);
    this.current = b;
    this.end = start + this.bucketMs;
    return b;
  }

  /**
   * Every bucket that overlaps [fromMs, toMs] and the ring still holds, summed (an empty
   * snapshot when none does). A bucket from an earlier lap of the ring holds its own time, so
   * an old one is never taken for a recent one.
   */
  snapshot(fromMs: number, toMs: number): WindowSnapshot {
    const start = windowStart(fromMs, toMs, this.bucketMs, this.buckets);
    const parts: WindowSnapshot[] = [];
    for (const b of this.ring ?? []) {
      if (b.start < start || b.start > toMs) continue;
      const errorsByCode: Record<string, number> = {};
      for (let i = 0; i < b.errors.length; i++) if (b.errors[i]! > 0) errorsByCode[CODES[i]!] = b.errors[i]!;
      parts.push({ fromMs: b.start, toMs, requests: b.requests, errors: b.failures, errorsByCode, latency: b.latencySnapshot() });
    }
    return mergeWindowSnapshots(parts, start, toMs);
  }
}

/**
 * Where a window over [fromMs, toMs] really starts: the start of the bucket holding fromMs,
 * but no earlier than the oldest bucket the ring still holds when toMs's bucket is current.
 */
export function windowStart(fromMs: number, toMs: number, bucketMs = WINDOW_BUCKET_MS, buckets = WINDOW_BUCKETS): number {
  const align = (ms: number) => Math.floor(ms / bucketMs) * bucketMs;
  return Math.max(align(fromMs), align(toMs) - (buckets - 1) * bucketMs);
}

/** An empty latency snapshot of the shared precision. */
function emptyLatency(): HistogramSnapshot {
  return snapshotHistogram(latencyHistogram());
}

/**
 * Several snapshots of the window [fromMs, toMs] (fromMs aligned on a bucket start) summed:
 * counts and codes add, histograms add count to count at each index (every percentile of the
 * sum is that of one histogram holding every request).
 */
export function mergeWindowSnapshots(parts: WindowSnapshot[], fromMs: number, toMs: number): WindowSnapshot {
  const out: WindowSnapshot = { fromMs, toMs, requests: 0, errors: 0, errorsByCode: {}, latency: emptyLatency() };
  if (parts.length === 0) return out;
  const h = fastRecordable(latencyHistogram());
  for (const p of parts) {
    out.requests += p.requests;
    out.errors += p.errors;
    for (const [code, n] of Object.entries(p.errorsByCode)) out.errorsByCode[code] = (out.errorsByCode[code] ?? 0) + n;
    addHistogramSnapshot(h, p.latency);
  }
  out.latency = snapshotHistogram(h);
  return out;
}

/** The summary a controller reads: latency in milliseconds, over the successful requests. */
export interface WindowStats {
  requests: number;
  errors: number;
  errorsByCode: Record<string, number>;
  latency: { p50: number; p95: number; p99: number; mean: number; count: number };
  fromMs: number;
  toMs: number;
}

/** An HDR histogram (us) holding a snapshot's latency, for percentiles or tests over values. */
export function latencyOf(s: WindowSnapshot): hdr.Histogram {
  const h = latencyHistogram();
  addHistogramSnapshot(h, s.latency);
  return h;
}

export function windowStats(s: WindowSnapshot): WindowStats {
  const h = latencyOf(s);
  const n = h.totalCount;
  const ms = (us: number) => (n === 0 ? 0 : us / 1000);
  return {
    requests: s.requests,
    errors: s.errors,
    errorsByCode: { ...s.errorsByCode },
    latency: { p50: ms(h.getValueAtPercentile(50)), p95: ms(h.getValueAtPercentile(95)), p99: ms(h.getValueAtPercentile(99)), mean: ms(h.mean), count: n },
    fromMs: s.fromMs,
    toMs: s.toMs,
  };
}
