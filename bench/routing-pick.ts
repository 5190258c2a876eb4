/**
 * `npm run bench -- routing-pick`: the per-request cost of choosing a route's variant
 * (src/routing/assign.ts), beside a Math.random() call measured in the same run, so the figure
 * reads as "so many random calls". Hash picks over 4,096 distinct unit ids (as a request stream
 * would bring them), random picks without a unit id, and for comparison the whole hash done
 * with the `murmurhash` npm package (string concatenation + TextEncoder per call). First checks
 * that the Assigner's buckets equal unitBucket's and the package's, and the split of 90/10.
 * Then hash picks of routes whose variants carry ranges (src/routing/ranges.ts), beside the same
 * route by cumulative weights in the same rounds: 1/3,1/3,1/3 rebalanced once to 1/2,1/4,1/4 (5
 * ranges), after a chain of 12 rebalances (8: both still the linear scan) and with 64 interleaved
 * ranges (the binary search),
 * after checking every pick against the variant whose range holds the unit's bucket.
 * Then the other per-request cost a routed answer has: recording its latency into its variant's
 * HDR histogram, with recordFast (src/metrics/fast-record.ts) against the library's recordValue,
 * after checking that both fill the same buckets.
 */
import * as hdr from 'hdr-histogram-js';
import murmurhash from 'murmurhash';
import { fastRecordable, recordFast } from '../src/metrics/fast-record.js';
import { Assigner, unitBucket } from '../src/routing/assign.js';
import type { VariantRanges } from '../src/routing/ranges.js';
import { parseRoute, rebalanceRoute, routeRanges, type RouteSpec } from '../src/routing/route.js';
import { check, compare, table } from './util.js';

const UNITS = Array.from({ length: 4096 }, (_, i) => `user-${(i * 2654435761) >>> 0}`);

export function runRoutingPick(): Record<string, number> {
  const spec = parseRoute({
    variants: [{ name: 'a', version: '1', weight: 0.9 }, { name: 'b', version: '2', weight: 0.1 }],
    assignment: 'hash',
  }, 'demo');
  const assigner = new Assigner(spec);
  const random = new Assigner({ ...spec, assignment: 'random' });

  // Correctness before timing.
  let b = 0;
  for (const u of UNITS) {
    const bucket = unitBucket(spec.salt, u);
    check(bucket === murmurhash.v3(`${spec.salt}:${u}`) / 2 ** 32, `unitBucket(${u}) equals the murmurhash package's`);
    const p = assigner.pick(u);
    check(p.index === (bucket < 0.9 ? 0 : 1), `pick(${u}) follows the bucket`);
    b += p.index;
  }
  check(Math.abs(b / UNITS.length - 0.1) < 0.03, `about 10% of units on b (got ${(b / UNITS.length).toFixed(3)})`);

  let i = 0;
  let sink = 0;
  const baseline = () => {
    sink += Math.random();
  };
  const hashPick = () => {
    sink += assigner.pick(UNITS[i++ & 4095]).index;
  };
  const randomPick = () => {
    sink += random.pick(undefined).index;
  };
  const packageHash = () => {
    sink += murmurhash.v3(`${spec.salt}:${UNITS[i++ & 4095]}`) / 2 ** 32 < 0.9 ? 0 : 1;
  };
  const hash = compare(baseline, hashPick);
  const rand = compare(baseline, randomPick);
  const pkg = compare(baseline, packageHash);
  table('route pick (2 variants, 90/10), ns per call', ['what', 'ns', 'Math.random() ns (same rounds)', 'ratio'], [
    ['hash pick (unit id, 4,096 distinct)', hash.b, hash.a, hash.ratio],
    ['random pick (no unit id)', rand.b, rand.a, rand.ratio],
    ['murmurhash package, same hash + bucket', pkg.b, pkg.a, pkg.ratio],
  ]);
  const ranged = rangesPicks(UNITS);
  if (sink === 0.5) console.log(''); // keeps the work observable

  // Latencies as a routed request records them: whole microseconds, here 5 us to ~50 ms.
  const us = Uint32Array.from({ length: 4096 }, (_, k) => Math.round(5 * 1.0027 ** (k * 0.9)));
  const histogram = () => fastRecordable(hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 }));
  const slow = histogram();
  const fast = histogram();
  for (const v of us) {
    slow.recordValue(v);
    recordFast(fast, v);
  }
  check(Buffer.from(slow._counts.buffer).equals(Buffer.from(fast._counts.buffer)) && slow.totalCount === fast.totalCount && slow.maxValue === fast.maxValue,
    'recordFast fills the same buckets as recordValue');
  let j = 0;
  const rec = compare(() => slow.recordValue(us[j++ & 4095]!), () => recordFast(fast, us[j++ & 4095]!));
  table('variant latency record (HDR, 3 digits, 1 us - 60 s), ns per call', ['what', 'ns'], [
    ['recordValue (hdr-histogram-js)', rec.a],
    ['recordFast (what a routed request pays)', rec.b],
    ['ratio', rec.ratio],
  ]);
  return { hashPickNs: hash.b, randomPickNs: rand.b, mathRandomNs: hash.a, packageHashNs: pkg.b, recordValueNs: rec.a, recordFastNs: rec.b, ...ranged };
}

/** The variant whose ranges hold bucket u (the definition, read from the ranges directly). */
function holder(ranges: VariantRanges, u: number): number {
  return ranges.findIndex((list) => list.some(([a, b]) => u >= a && u < b));
}

/** Hash picks with ranges against the same route by cumulative weights, same rounds (see the header). */
function rangesPicks(units: string[]): Record<string, number> {
  const thirds = parseRoute({ variants: ['a', 'b', 'c'].map((name, i) => ({ name, version: `${i + 1}`, weight: 1 })), assignment: 'hash' }, 'demo');
  const once = rebalanceRoute(thirds, [0.5, 0.25, 0.25], 'demo');
  let chained: RouteSpec = thirds;
  for (let k = 0; k < 12; k++) chained = rebalanceRoute(chained, [1 + (k % 3), 1 + ((k + 1) % 4), 1 + ((k * 7) % 5)], 'demo');
  const pieces = Array.from({ length: 64 }, (_, k) => [k / 64, (k + 1) / 64]);
  const interleaved = parseRoute({ variants: ['a', 'b', 'c'].map((name, v) => ({ name, version: `${v + 1}`, ranges: pieces.filter((_, k) => k % 3 === v) })), assignment: 'hash' }, 'demo');
  const cumulative = new Assigner(thirds);
  const rows: Array<Array<string | number>> = [];
  const out: Record<string, number> = {};
  let i = 0;
  let sink = 0;
  const cases = [['rangesOnce', once, 'rebalanced once'], ['rangesChained', chained, 'after 12 rebalances'], ['ranges64', interleaved, 'interleaved, binary search']] as const;
  for (const [key, spec, what] of cases) {
    const ranges = routeRanges(spec);
    const count = ranges.reduce((a, l) => a + l.length, 0);
    const assigner = new Assigner(spec);
    for (const u of units) check(assigner.pick(u).index === holder(ranges, unitBucket(spec.salt, u)), `${key}: pick(${u}) is the variant whose range holds its bucket`);
    const r = compare(() => {
      sink += cumulative.pick(units[i++ & 4095]).index;
    }, () => {
      sink += assigner.pick(units[i++ & 4095]).index;
    });
    rows.push([`${count} ranges (${what})`, r.b, r.a, r.ratio]);
    out[`${key}PickNs`] = r.b;
    out[`${key}CumulativeNs`] = r.a;
    out[`${key}Ratio`] = r.ratio;
  }
  table('hash pick with ranges (3 variants), ns per call', ['route', 'ns', 'cumulative 1/3 x 3 ns (same rounds)', 'ratio'], rows);
  if (sink === 0.5) console.log(''); // keeps the work observable
  return out;
}
