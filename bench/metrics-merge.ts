/**
 * What a whole-server `/metrics` or statistics read costs with I/O threads (issue #11): each
 * thread's `snapshotMetrics`, the copy postMessage makes of it (structuredClone stands in), and
 * the main thread's `mergeSnapshots`, for 20 model versions. Two fillings of the histograms:
 * typical (latencies spread over 0.05-50 ms) and the worst case
 * (latencies over the whole 1 us - 60 s range, batches of 1 to 1,024 rows: every size seen).
 * Checks first that the merged figures add up.
 */
import * as hdr from 'hdr-histogram-js';
import { mulberry32 } from '../src/random.js';
import { metricsLines } from '../src/metrics/prometheus.js';
import { mergeSnapshots, snapshotMetrics } from '../src/metrics/snapshot.js';
import { Metrics } from '../src/metrics/version-metrics.js';
import { check, table, timeNs } from './util.js';

const VERSIONS = 20;

/** One thread's metrics: `perVersion` requests on each of 20 versions. */
function fill(seed: number, perVersion: number, worst: boolean): Metrics {
  const r = mulberry32(seed);
  const m = new Metrics();
  // Worst: log-uniform over 1 us - 60 s (every bucket); typical: 0.05-50 ms.
  const [lo, hi] = worst ? [0.001, 60_000] : [0.05, 50];
  const ms = () => Math.exp(Math.log(lo) + r() * Math.log(hi / lo));
  for (let v = 0; v < VERSIONS; v++) {
    const vm = m.of(`model-${v >> 1}`, String(v & 1));
    for (let i = 0; i < perVersion; i++) {
      vm.observeQueue(ms() / 10);
      vm.observeExecution(1 + Math.floor(r() ** 3 * (worst ? 1024 : 64)), ms() / 2, 1);
      vm.observeSuccess(ms(), 1);
    }
    m.countError('OVERLOADED');
  }
  return m;
}

export function runMetricsMerge(): Record<string, number> {
  const figures: Record<string, number> = {};
  const rows: Array<Array<string | number>> = [];
  for (const worst of [false, true]) {
    for (const threads of [2, 4]) {
      const parts = Array.from({ length: threads }, (_, t) => fill(t + 1, worst ? 20_000 : 5_000, worst));
      const snaps = parts.map((p, t) => snapshotMetrics(p, t));
      const merged = mergeSnapshots(snaps.map((s) => structuredClone(s))).metrics;
      // Exact: the merged histogram is the library's own sum (add) of the threads' histograms.
      const sum = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
      for (const p of parts) sum.add(p.of('model-3', '1').latency);
      const got = merged.of('model-3', '1').latency;
      check(got.totalCount === sum.totalCount && got.mean === sum.mean, 'merged count and mean are the sum\'s');
      for (const q of [50, 90, 99, 99.9, 100]) check(got.getValueAtPercentile(q) === sum.getValueAtPercentile(q), `merged p${q} is the sum's`);
      const histograms = snaps[0]!.versions.flatMap((v) => [v.latency, v.queue, v.compute, v.batchRows]);
      const slots = histograms.reduce((n, h) => n + h.counts.length, 0);
      const bytes = histograms.reduce((n, h) => n + h.counts.byteLength, 0);
      const snapUs = timeNs(() => snapshotMetrics(parts[0]!, 0), 300) / 1e3;
      const cloneUs = timeNs(() => structuredClone(snaps[0]), 300) / 1e3;
      const mergeUs = timeNs(() => mergeSnapshots(snaps), 300) / 1e3;
      const renderUs = timeNs(() => metricsLines(merged), 300) / 1e3;
      const label = `${worst ? 'worst' : 'typical'}, ${threads} threads`;
      rows.push([label, slots, bytes / 1024, snapUs, cloneUs, mergeUs, threads * snapUs + threads * cloneUs + mergeUs, renderUs]);
      figures[`${worst ? 'worst' : 'typical'}.${threads}.snapshotUs`] = snapUs;
      figures[`${worst ? 'worst' : 'typical'}.${threads}.mergeUs`] = mergeUs;
    }
  }
  // CPU, all: every thread's snapshot and clone plus the merge (the threads take theirs in parallel).
  table(`Metrics snapshot and merge, ${VERSIONS} versions (microseconds; a thread's snapshot: histogram count slots and their KiB)`,
    ['filling', 'slots', 'KiB', 'snapshot', 'clone', 'merge', 'CPU, all', 'render'], rows);
  return figures;
}
