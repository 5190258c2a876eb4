/**
 * Version windows (src/metrics/windows.ts) on a fake clock: buckets aligned on wall-clock
 * multiples, rotation and reuse of ring slots, expiry, window queries, and sums across two
 * windows (two I/O threads) equal to one window recording everything.
 */
import { describe, expect, it } from 'vitest';
import { mergeWindowSnapshots, latencyOf, VersionWindow, windowStats } from '../../src/metrics/windows.js';
import { VersionMetrics } from '../../src/metrics/version-metrics.js';
import { snapshotHistogram } from '../../src/metrics/histogram-snapshot.js';
import { mulberry32 } from '../../src/random.js';

const T0 = 1_700_000_000_000; // a multiple of 10 s

describe('VersionWindow', () => {
  it('counts requests, errors by code and latency per 10 s bucket, and answers a query from the buckets it overlaps', () => {
    const w = new VersionWindow();
    w.recordSuccess(1000, T0 + 1);
    w.recordSuccess(3000, T0 + 9_999);
    w.recordFailure('MODEL_ERROR', T0 + 5_000);
    w.recordSuccess(2000, T0 + 10_000); // next bucket
    w.recordFailure('DEADLINE_EXCEEDED', T0 + 19_000);
    w.recordFailure('MODEL_ERROR', T0 + 19_500);

    const first = w.snapshot(T0, T0 + 5_000);
    expect(first).toMatchObject({ fromMs: T0, toMs: T0 + 5_000, requests: 3, errors: 1, errorsByCode: { MODEL_ERROR: 1 } });
    expect(latencyOf(first).totalCount).toBe(2);

    const both = w.snapshot(T0 + 9_000, T0 + 19_999);
    expect(both).toMatchObject({ fromMs: T0, requests: 6, errors: 3, errorsByCode: { MODEL_ERROR: 2, DEADLINE_EXCEEDED: 1 } });
    const s = windowStats(both);
    expect(s.latency.count).toBe(3);
    expect(s.latency.p50).toBeCloseTo(2, 2); // ms, to HDR precision
    expect(s.latency.mean).toBeCloseTo(2, 2);

    const second = w.snapshot(T0 + 10_000, T0 + 20_000);
    expect(second).toMatchObject({ fromMs: T0 + 10_000, requests: 3, errors: 2 });
    // A query ending before a bucket starts leaves it out.
    expect(w.snapshot(T0 + 10_000, T0 + 9_999 + 10_000).requests).toBe(3);
    expect(w.snapshot(T0 - 50_000, T0 - 1).requests).toBe(0);
  });

  it('reuses a slot a lap later: the old bucket is gone, not added to the new one', () => {
    const w = new VersionWindow({ bucketMs: 1000, buckets: 3 });
    for (let s = 0; s < 3; s++) for (let i = 0; i <= s; i++) w.recordSuccess(100 * (s + 1), T0 + s * 1000 + i);
    expect(w.snapshot(T0, T0 + 2_999).requests).toBe(1 + 2 + 3);
    // Second 3 takes the slot of second 0.
    w.recordFailure('INTERNAL', T0 + 3_000);
    expect(w.snapshot(T0, T0 + 3_999)).toMatchObject({ requests: 2 + 3 + 1, errors: 1, fromMs: T0 + 1000 });
    const only = w.snapshot(T0 + 3_000, T0 + 3_999);
    expect(only).toMatchObject({ requests: 1, errors: 1, errorsByCode: { INTERNAL: 1 } });
    expect(latencyOf(only).totalCount).toBe(0); // the reset histogram of the reused slot
    // Much later, without traffic in between: every old bucket is outside any recent query.
    w.recordSuccess(7, T0 + 60_000);
    expect(w.snapshot(T0 + 58_000, T0 + 60_500)).toMatchObject({ requests: 1, errors: 0, fromMs: T0 + 58_000 });
  });

  it('expires buckets by their time: a window with no traffic reports nothing recent', () => {
    const w = new VersionWindow();
    w.recordSuccess(500, T0 + 3);
    expect(w.snapshot(T0 + 200_000, T0 + 300_000).requests).toBe(0);
    expect(w.snapshot(T0, T0 + 299_999).requests).toBe(1);
    // 5 minutes on, its slot belongs to the bucket of T0 + 300 s: it has expired.
    expect(w.snapshot(T0, T0 + 300_000)).toMatchObject({ requests: 0, fromMs: T0 + 10_000 });
  });

  it('records into the current bucket when the clock steps back', () => {
    const w = new VersionWindow();
    w.recordSuccess(500, T0 + 15_000);
    w.recordFailure('INTERNAL', T0 + 2_000);
    expect(w.snapshot(T0 + 10_000, T0 + 19_999)).toMatchObject({ requests: 2, errors: 1 });
  });

  it('counts a code outside the catalogue as OTHER', () => {
    const w = new VersionWindow();
    w.recordFailure('NO_SUCH_CODE', T0);
    expect(w.snapshot(T0, T0 + 1).errorsByCode).toEqual({ OTHER: 1 });
  });

  it('sums two threads\' windows exactly: equal to one window that recorded every request', () => {
    const rnd = mulberry32(15);
    const a = new VersionWindow();
    const b = new VersionWindow();
    const one = new VersionWindow();
    const codes = ['MODEL_ERROR', 'DEADLINE_EXCEEDED', 'OVERLOADED'];
    for (let i = 0; i < 20_000; i++) {
      const t = T0 + Math.floor(i * 4.5); // 90 s of traffic
      const w = rnd() < 0.5 ? a : b;
      if (rnd() < 0.07) {
        const code = codes[Math.floor(rnd() * codes.length)]!;
        w.recordFailure(code, t);
        one.recordFailure(code, t);
      } else {
        const us = Math.max(1, Math.round(50 * Math.exp(rnd() * 8))); // 50 us to ~150 ms
        w.recordSuccess(us, t);
        one.recordSuccess(us, t);
      }
    }
    const from = T0 + 25_000;
    const to = T0 + 75_000;
    const merged = mergeWindowSnapshots([a.snapshot(from, to), b.snapshot(from, to)], T0 + 20_000, to);
    const whole = one.snapshot(from, to);
    expect(merged.requests).toBe(whole.requests);
    expect(merged.errors).toBe(whole.errors);
    expect(merged.errorsByCode).toEqual(whole.errorsByCode);
    expect(merged.fromMs).toBe(T0 + 20_000);
    expect(Array.from(merged.latency.counts)).toEqual(Array.from(whole.latency.counts));
    expect([merged.latency.min, merged.latency.max]).toEqual([whole.latency.min, whole.latency.max]);
    expect(windowStats(merged)).toEqual(windowStats(whole));
    // And the window's buckets are exactly the requests between their bounds: 20 s..80 s.
    const inRange = Array.from({ length: 20_000 }, (_, i) => T0 + Math.floor(i * 4.5)).filter((t) => t >= T0 + 20_000 && t < T0 + 80_000).length;
    expect(whole.requests).toBe(inRange);
  });

  it('shares VersionMetrics.latency\'s precision, so a bucket adds into a lifetime histogram', () => {
    const m = new VersionMetrics('m', '1');
    const w = new VersionWindow();
    w.recordSuccess(123_456, T0);
    const s = w.snapshot(T0, T0);
    expect([s.latency.lowest, s.latency.digits]).toEqual([snapshotHistogram(m.latency).lowest, snapshotHistogram(m.latency).digits]);
    m.latency.recordValue(123_456);
    expect(latencyOf(s).getValueAtPercentile(50)).toBe(m.latency.getValueAtPercentile(50));
  });

  it('is fed by VersionMetrics: successes with their latency, failures with their code', () => {
    const m = new VersionMetrics('m', '1');
    m.observeSuccess(2.5, 1);
    m.observeFailure(1, 'MODEL_ERROR');
    const now = Date.now();
    const s = m.window!.snapshot(now - 10_000, now);
    expect(s).toMatchObject({ requests: 2, errors: 1, errorsByCode: { MODEL_ERROR: 1 } });
    expect(latencyOf(s).getValueAtPercentile(100)).toBe(m.latency.getValueAtPercentile(100));
    expect(m.latency.totalCount).toBe(1);
    expect(new VersionMetrics('m', '1', { windowed: false }).window).toBeUndefined();
  });
});

describe('window buckets as histograms', () => {
  it('snapshot exactly what an HDR latency histogram recording the same values gives, past 60 s too', () => {
    const rnd = mulberry32(7);
    const w = new VersionWindow();
    const h = new VersionMetrics('m', '1', { windowed: false }).latency;
    const values = [1, 2, 2047, 2048, 2049, 60_000_000, 61_000_000, 900_000_000];
    for (let i = 0; i < 5000; i++) values.push(Math.max(1, Math.round(Math.exp(rnd() * 17))));
    for (const v of values) {
      w.recordSuccess(v, T0);
      h.recordValue(v);
    }
    const mine = w.snapshot(T0, T0).latency;
    const theirs = snapshotHistogram(h);
    expect([mine.min, mine.max, mine.lowest, mine.digits]).toEqual([theirs.min, theirs.max, theirs.lowest, theirs.digits]);
    expect(Buffer.from(mine.counts.buffer, mine.counts.byteOffset, mine.counts.byteLength).equals(Buffer.from(theirs.counts.buffer, theirs.counts.byteOffset, theirs.counts.byteLength))).toBe(true);
    expect(latencyOf(w.snapshot(T0, T0)).getValueAtPercentile(99)).toBe(h.getValueAtPercentile(99));
  });
});
