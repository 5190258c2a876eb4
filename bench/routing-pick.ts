/**
 * `npm run bench -- routing-pick`: the per-request cost of choosing a route's variant
 * (src/routing/assign.ts), beside a Math.random() call measured in the same run, so the figure
 * reads as "so many random calls". Hash picks over 4,096 distinct unit ids (as a request stream
 * would bring them), random picks without a unit id, and for comparison the whole hash done
 * with the `murmurhash` npm package (string concatenation + TextEncoder per call). First checks
 * that the Assigner's buckets equal unitBucket's and the package's, and the split of 90/10.
 * Then the other per-request cost a routed answer has: recording its latency into its variant's
 * HDR histogram, with recordFast (src/metrics/fast-record.ts) against the library's recordValue,
 * after checking that both fill the same buckets.
 */
import * as hdr from 'hdr-histogram-js';
import murmurhash from 'murmurhash';
import { fastRecordable, recordFast } from '../src/metrics/fast-record.js';
import { Assigner, unitBucket } from '../src/routing/assign.js';
import { parseRoute } from '../src/routing/route.js';
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
  return { hashPickNs: hash.b, randomPickNs: rand.b, mathRandomNs: hash.a, packageHashNs: pkg.b, recordValueNs: rec.a, recordFastNs: rec.b };
}
