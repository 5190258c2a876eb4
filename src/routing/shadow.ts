/**
 * Shadow traffic: a route's shadows (version + fraction) also run a share of its requests after
 * the caller's answer is sent; their outputs and latency are compared with the caller's, never
 * returned. A shadow never delays or fails the caller, and it is the first work dropped under
 * load: it is skipped (counted as dropped) while admission is shedding or while this thread
 * already has SHADOW_MAX_IN_FLIGHT shadow requests running.
 *
 * Each I/O thread keeps its own ShadowStats per (model, shadow version); the control plane merges
 * the threads' snapshots (counters summed, HDR histograms added exactly) for the shadow report.
 */
import * as hdr from 'hdr-histogram-js';
import { addHistogramSnapshot, snapshotHistogram, type HistogramSnapshot } from '../metrics/histogram-snapshot.js';
import type { Tensor } from '../model/tensor.js';

/** Shadow requests one thread runs at once at most; beyond it new ones are dropped. */
export const SHADOW_MAX_IN_FLIGHT = 64;
/** Outputs agree when every element differs by at most this (absolute). */
export const SHADOW_TOLERANCE = 1e-6;

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

export interface ShadowCounters {
  mirrored: number;
  dropped: number;
  errors: number;
  compared: number;
  agreeing: number;
  /** Sum over compared answers of the mean absolute difference of their first output. */
  sumMeanAbsDiff: number;
  maxAbsDiff: number;
}

export interface ShadowSnapshot extends ShadowCounters {
  model: string;
  version: string;
  /** Shadow latency, us. */
  shadow: HistogramSnapshot;
  /** The caller's latency on the mirrored requests, us. */
  caller: HistogramSnapshot;
}

export class ShadowStats implements ShadowCounters {
  mirrored = 0;
  dropped = 0;
  errors = 0;
  compared = 0;
  agreeing = 0;
  sumMeanAbsDiff = 0;
  maxAbsDiff = 0;
  readonly shadowLatency = histogram();
  readonly callerLatency = histogram();

  constructor(readonly model: string, readonly version: string) {}

  /** Compares the shadow's first output with the caller's and records both latencies (ms). */
  record(caller: Tensor | undefined, shadow: Tensor | undefined, callerMs: number, shadowMs: number): void {
    this.shadowLatency.recordValue(Math.max(1, Math.round(shadowMs * 1000)));
    this.callerLatency.recordValue(Math.max(1, Math.round(callerMs * 1000)));
    if (!caller || !shadow) return;
    const a = caller.data as ArrayLike<number | bigint>;
    const b = shadow.data as ArrayLike<number | bigint>;
    let max = a.length === b.length ? 0 : Infinity;
    let sum = 0;
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const d = Math.abs(Number(a[i]) - Number(b[i]));
      sum += d;
      if (d > max || Number.isNaN(d)) max = Number.isNaN(d) ? Infinity : d;
    }
    this.compared++;
    this.sumMeanAbsDiff += n === 0 ? 0 : sum / n;
    if (max > this.maxAbsDiff) this.maxAbsDiff = max;
    if (max <= SHADOW_TOLERANCE) this.agreeing++;
  }

  snapshot(): ShadowSnapshot {
    return {
      model: this.model, version: this.version, mirrored: this.mirrored, dropped: this.dropped, errors: this.errors,
      compared: this.compared, agreeing: this.agreeing, sumMeanAbsDiff: this.sumMeanAbsDiff, maxAbsDiff: this.maxAbsDiff,
      shadow: snapshotHistogram(this.shadowLatency), caller: snapshotHistogram(this.callerLatency),
    };
  }
}

/** The shadow report of one model: every thread's snapshots merged, per shadow version. */
export function shadowReport(snapshots: ShadowSnapshot[]): Array<Record<string, unknown>> {
  const by = new Map<string, { c: ShadowCounters; shadow: hdr.Histogram; caller: hdr.Histogram }>();
  for (const s of snapshots) {
    let e = by.get(s.version);
    if (!e) {
      e = { c: { mirrored: 0, dropped: 0, errors: 0, compared: 0, agreeing: 0, sumMeanAbsDiff: 0, maxAbsDiff: 0 }, shadow: histogram(), caller: histogram() };
      by.set(s.version, e);
    }
    e.c.mirrored += s.mirrored;
    e.c.dropped += s.dropped;
    e.c.errors += s.errors;
    e.c.compared += s.compared;
    e.c.agreeing += s.agreeing;
    e.c.sumMeanAbsDiff += s.sumMeanAbsDiff;
    e.c.maxAbsDiff = Math.max(e.c.maxAbsDiff, s.maxAbsDiff);
    addHistogramSnapshot(e.shadow, s.shadow);
    addHistogramSnapshot(e.caller, s.caller);
  }
  const ms = (h: hdr.Histogram, q: number) => (h.totalCount === 0 ? null : h.getValueAtPercentile(q) / 1000);
  return [...by].sort(([a], [b]) => a.localeCompare(b)).map(([version, e]) => ({
    version,
    mirrored: e.c.mirrored,
    dropped: e.c.dropped,
    errors: e.c.errors,
    compared: e.c.compared,
    agreeing: e.c.agreeing,
    tolerance: SHADOW_TOLERANCE,
    mean_abs_diff: e.c.compared === 0 ? null : e.c.sumMeanAbsDiff / e.c.compared,
    max_abs_diff: e.c.compared === 0 ? null : Number.isFinite(e.c.maxAbsDiff) ? e.c.maxAbsDiff : 'Infinity',
    latency_ms: { shadow: { p50: ms(e.shadow, 50), p99: ms(e.shadow, 99) }, caller: { p50: ms(e.caller, 50), p99: ms(e.caller, 99) } },
  }));
}
