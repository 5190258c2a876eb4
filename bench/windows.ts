/**
 * `npm run bench -- windows`: what the version windows (src/metrics/windows.ts) add to the
 * request path. A version's answer is recorded by VersionMetrics.observeSuccess (a failure by
 * observeFailure); the same calls on a VersionMetrics built without a window are the baseline,
 * timed in the same interleaved rounds (bench/util.ts compare), so the figure to read is the
 * ratio. First checks that the window holds what was recorded (requests, errors by code, and
 * a latency histogram equal to the lifetime one over the same requests); then counts garbage
 * collections during 10 M answers recorded with and without a window (none expected: the
 * request path allocates nothing).
 *
 * The latencies are read from an array of boxed numbers, as the data plane hands over a number
 * it holds already: read from a Float64Array they would be unboxed, and a call that V8 does not
 * inline (a VersionMetrics with a window is too large to inline into the loop) boxes its
 * argument again: 16 bytes a call, which is the benchmark's allocation, not the recording's.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { VersionMetrics } from '../src/metrics/version-metrics.js';
import { latencyOf } from '../src/metrics/windows.js';
import { SluiceError } from '../src/errors.js';
import { check, compare, table } from './util.js';

/** Garbage collections (any kind) while `fn` runs, as perf_hooks reports them. */
async function gcsDuring(fn: () => void): Promise<number> {
  let n = 0;
  const obs = new PerformanceObserver((list) => {
    n += list.getEntries().length;
  });
  obs.observe({ entryTypes: ['gc'] });
  fn();
  await new Promise((r) => setTimeout(r, 50)); // entries are delivered asynchronously
  obs.disconnect();
  return n;
}

export async function runWindows(): Promise<Record<string, number>> {
  // Request latencies as the data plane passes them: fractional ms, 20 us to ~40 ms.
  const ms: number[] = [];
  for (let k = 0; k < 4096; k++) ms.push(0.02 * 1.0019 ** (k * 0.97));
  (ms as unknown[]).push('boxed'); // generic elements: each number is stored boxed
  ms.pop();

  // Correctness before timing.
  const m = new VersionMetrics('m', '1');
  for (const v of ms) m.observeSuccess(v, 1);
  for (let k = 0; k < 100; k++) m.observeFailure(1, k % 2 ? 'MODEL_ERROR' : 'DEADLINE_EXCEEDED');
  const now = Date.now();
  const w = m.window!.snapshot(now - 60_000, now);
  check(w.requests === ms.length + 100 && w.errors === 100, `the window counts ${ms.length + 100} requests and 100 errors (got ${w.requests}, ${w.errors})`);
  check(w.errorsByCode.MODEL_ERROR === 50 && w.errorsByCode.DEADLINE_EXCEEDED === 50, 'errors by code');
  const h = latencyOf(w);
  check(h.totalCount === m.latency.totalCount && [50, 90, 99, 99.9, 100].every((p) => h.getValueAtPercentile(p) === m.latency.getValueAtPercentile(p)) && h.mean === m.latency.mean,
    'the window\'s latency histogram equals the lifetime one over the same requests');

  const plain = new VersionMetrics('m', '1', { windowed: false });
  const windowed = new VersionMetrics('m', '1');
  let at = Date.now();
  // One answer each first: the window's ring and its current slot are made on first use.
  plain.observeSuccess(ms[0]!, 1, at);
  windowed.observeSuccess(ms[0]!, 1, at);
  const plainGcs = await gcsDuring(() => {
    for (let k = 0; k < 10_000_000; k++) plain.observeSuccess(ms[k & 4095]!, 1, at);
  });
  const windowedGcs = await gcsDuring(() => {
    for (let k = 0; k < 10_000_000; k++) windowed.observeSuccess(ms[k & 4095]!, 1, at);
  });
  check(windowed.window!.snapshot(at, at).requests === 10_000_001, 'ten million answers in the current bucket');
  table('garbage collections during 10,000,000 answers recorded', ['what', 'collections'], [['without window', plainGcs], ['with window', windowedGcs]]);
  // The time as the data plane passes it (from the reading that ended the request's latency);
  // it moves on every 1,024 calls, so buckets rotate as they would under traffic (1 s a step:
  // a slot is reused every 30 steps).
  let i = 0;
  const time = () => ((i & 1023) === 0 ? (at += 1000) : at);
  const ok = compare(() => plain.observeSuccess(ms[i++ & 4095]!, 1, time()), () => windowed.observeSuccess(ms[i++ & 4095]!, 1, time()), 15);
  const failed = compare(() => plain.observeFailure(ms[i++ & 4095]!, 'MODEL_ERROR', time()), () => windowed.observeFailure(ms[i++ & 4095]!, 'MODEL_ERROR', time()), 15);
  // What a failed request pays anyway: its coded error (a stack trace is captured).
  const error = compare(() => {
    plain.observeFailure(ms[i++ & 4095]!, new SluiceError('MODEL_ERROR', 'x').code, time());
  }, () => {
    windowed.observeFailure(ms[i++ & 4095]!, new SluiceError('MODEL_ERROR', 'x').code, time());
  }, 15);
  table('version metrics per request, ns per call (same interleaved rounds, 15)', ['what', 'without window ns', 'with window ns', 'ratio'], [
    ['observeSuccess (answer)', ok.a, ok.b, ok.ratio],
    ['observeFailure (error)', failed.a, failed.b, failed.ratio],
    ['observeFailure + new SluiceError (a failed request)', error.a, error.b, error.ratio],
  ]);

  return { errorNs: error.b, successNs: ok.a, successWindowedNs: ok.b, successRatio: ok.ratio, failureNs: failed.a, failureWindowedNs: failed.b, failureRatio: failed.ratio, gcsWithout: plainGcs, gcsWith: windowedGcs };
}
