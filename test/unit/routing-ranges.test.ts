/**
 * Hash ranges (src/routing/ranges.ts, the `ranges` field of src/routing/route.ts, the Assigner's
 * range pick): parse errors with their codes, exact round trips, rebalance's properties over
 * seeded random weight vectors, and over 20,000 unit ids the issue #14 case: 1/3,1/3,1/3 ->
 * 1/2,1/4,1/4 moves ~1/6 of the units (cumulative weights move ~1/4), each from a loser to a gainer.
 */
import { describe, expect, it } from 'vitest';
import { describeRoute } from '../../src/cli/routes.js';
import { SluiceError } from '../../src/errors.js';
import { Assigner, unitBucket } from '../../src/routing/assign.js';
import { checkPartition, cumulativeRanges, MIN_PIECE, movedMass, rangeWeights, rebalance, segments, type Range, type VariantRanges } from '../../src/routing/ranges.js';
import { MAX_RANGES, parseRoute, rebalanceRoute, routeJson, routeRanges, sameRoute, type RouteSpec } from '../../src/routing/route.js';
import { mulberry32 } from '../helpers/random.js';

const third = 1 / 3;

function route(variants: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}): unknown {
  return { variants: variants.map((v, i) => ({ name: `v${i}`, version: '1', ...v })), assignment: 'hash', ...extra };
}

function refused(body: unknown, message: RegExp): void {
  let err: unknown;
  try {
    parseRoute(body, 'm');
  } catch (e) {
    err = e;
  }
  expect(err, `${JSON.stringify(body)} must be refused`).toBeInstanceOf(SluiceError);
  expect((err as SluiceError).code).toBe('ROUTE_INVALID');
  expect((err as SluiceError).httpStatus).toBe(400);
  expect((err as SluiceError).message).toMatch(message);
}

function refusedBy(f: () => unknown, message: RegExp): void {
  expect(f).toThrow(expect.objectContaining({ code: 'ROUTE_INVALID', message: expect.stringMatching(message) }));
}

/** The variant whose ranges hold u, read directly from the ranges (not through segments). */
function holder(ranges: VariantRanges, u: number): number {
  return ranges.findIndex((list) => list.some(([a, b]) => u >= a && u < b));
}

function randomWeights(r: () => number, n: number): number[] {
  const w = Array.from({ length: n }, () => 0.02 + r() ** 2);
  const sum = w.reduce((a, x) => a + x, 0);
  return w.map((x) => x / sum);
}

describe('ranges in a route', () => {
  it('parses ranges, derives the weights from them, and round-trips exactly through its JSON', () => {
    const spec = parseRoute(route([
      { ranges: [[0, 0.25], [0.5, 0.75]] },
      { ranges: [[0.25, 0.5]], weight: 0.25 },
      { ranges: [[0.75, 1]] },
    ]), 'm');
    expect(spec.variants.map((v) => v.weight)).toEqual([0.5, 0.25, 0.25]);
    expect(spec.variants[0]!.ranges).toEqual([[0, 0.25], [0.5, 0.75]]);
    expect(Object.isFrozen(spec.variants[0]!.ranges) && Object.isFrozen(spec.variants[0]!.ranges![0])).toBe(true);
    expect(routeJson(spec).variants[0]).toEqual({ name: 'v0', version: '1', weight: 0.5, ranges: [[0, 0.25], [0.5, 0.75]] });
    // Values within the tolerance are kept exactly as given; the weights read them as the Assigner does.
    const ragged = parseRoute(route([{ ranges: [[0, 0.3333333333]] }, { ranges: [[0.33333333334, 2 / 3]] }, { ranges: [[2 / 3 + 1e-10, 1 - 1e-10]] }]), 'm');
    expect(ragged.variants.map((v) => v.ranges![0])).toEqual([[0, 0.3333333333], [0.33333333334, 2 / 3], [2 / 3 + 1e-10, 1 - 1e-10]]);
    expect(ragged.variants.map((v) => v.weight)).toEqual([0.3333333333, 2 / 3 - 0.3333333333, 1 - 2 / 3]);
    for (const s of [spec, ragged, rebalanceRoute(parseRoute(route([{ weight: 0.7 }, { weight: 0.2 }, { weight: 0.1 }]), 'm'), [0.1, 0.3, 0.6], 'm')]) {
      const again = parseRoute(JSON.parse(JSON.stringify(routeJson(s))), 'm');
      expect(again).toEqual(s);
      expect(sameRoute(again, s)).toBe(true);
    }
    // `sluice route set` prints it with its ranges counted.
    expect(describeRoute(routeJson(spec))).toBe('v0=1 50% in 2 ranges, v1=1 25% in 1 range, v2=1 25% in 1 range; hash of salt "m" + unit id');
    // The same weights with and without ranges are different routes (they place units differently).
    expect(sameRoute(parseRoute(route([{ weight: 0.5 }, { weight: 0.5 }]), 'm'), parseRoute(route([{ ranges: [[0, 0.5]] }, { ranges: [[0.5, 1]] }]), 'm'))).toBe(false);
  });

  it('refuses bad ranges with ROUTE_INVALID naming the field', () => {
    const two = (a: unknown, b: unknown, extra: Record<string, unknown> = {}) => route([{ ranges: a }, { ranges: b }], extra);
    refused(two([[0, 0.5]], [[0.5, 1]], { assignment: 'random' }), /^variants\[0\]\.ranges need assignment "hash"/);
    refused(two([[0, 0.5]], [[0.5, 1]], { assignment: 'bandit' }), /^variants\[0\]\.ranges need assignment "hash"/);
    refused(route([{ weight: 0.5 }, { ranges: [[0, 1]] }]), /^variants\[0\]\.ranges is missing: variants\[1\] has ranges/);
    refused(two({ a: 1 }, [[0.5, 1]]), /^variants\[0\]\.ranges must be a list/);
    refused(two([], [[0, 1]]), /^variants\[0\]\.ranges must have 1 to 256 entries, not 0/);
    for (const bad of [0.5, [0.5], [0, 0.5, 1], ['0', '0.5'], [0, null], { 0: 0, 1: 0.5 }]) {
      refused(two([bad], [[0.5, 1]]), /^variants\[0\]\.ranges\[0\] must be a pair \[start, end\] of numbers/);
    }
    for (const bad of [[0.5, 0.5], [0.6, 0.5], [-0.1, 0.5], [0, 1.5], [0, NaN], [0, Infinity]]) {
      refused(two([bad], [[0.5, 1]]), /^variants\[0\]\.ranges\[0\] must be \[start, end\) with 0 <= start < end <= 1/);
    }
    refused(two([[0.5, 0.75], [0, 0.5]], [[0.75, 1]]), /^variants\[0\]\.ranges\[1\] starts before variants\[0\]\.ranges\[0\]/);
    refused(two([[0.1, 0.5]], [[0.5, 1]]), /^variants\[0\]\.ranges\[0\] starts at 0\.1 but the ranges start at 0: .* no gaps/);
    refused(two([[0, 0.4]], [[0.5, 1]]), /^variants\[1\]\.ranges\[0\] starts at 0\.5 but variants\[0\]\.ranges\[0\] ends at 0\.4/);
    refused(two([[0, 0.6]], [[0.5, 1]]), /^variants\[1\]\.ranges\[0\] overlaps variants\[0\]\.ranges\[0\]/);
    refused(two([[0, 0.6]], [[0, 1]]), /^variants\[1\]\.ranges\[0\] overlaps variants\[0\]\.ranges\[0\]/);
    refused(two([[0, 0.5]], [[0.5, 0.9]]), /^the ranges end at 0\.9 \(variants\[1\]\.ranges\[0\]\): .* up to 1/);
    refused(two([[0, 0.5 - 1e-8]], [[0.5, 1]]), /no gaps/); // beyond the tolerance
    refused(route([{ ranges: [[0, 0.5]], weight: 0.4 }, { ranges: [[0.5, 1]] }]), /^variants\[0\]\.weight 0\.4 differs from the length of its ranges, 0\.5/);
    refused(route([{ ranges: [[0, 0.5]], weight: -0.5 }, { ranges: [[0.5, 1]] }]), /^variants\[0\]\.weight must be a finite number > 0/);
    const many = Array.from({ length: MAX_RANGES + 1 }, (_, k): Range => [k / (MAX_RANGES + 1), (k + 1) / (MAX_RANGES + 1)]);
    refused(two(many.filter((_, k) => k % 2 === 0), many.filter((_, k) => k % 2 === 1)), /^variants: at most 256 ranges in all, not 257/);
    // Exactly MAX_RANGES is fine.
    const most = Array.from({ length: MAX_RANGES }, (_, k): Range => [k / MAX_RANGES, (k + 1) / MAX_RANGES]);
    expect(parseRoute(two(most.filter((_, k) => k % 2 === 0), most.filter((_, k) => k % 2 === 1)), 'm').variants[0]!.weight).toBe(0.5);
  });
});

describe('Assigner with ranges', () => {
  const units = Array.from({ length: 5000 }, (_, i) => `unit-${i}`);

  it('puts each unit in the variant whose range holds its bucket, with the range length as propensity', () => {
    // 20 ranges: past the linear scan, so the binary search is what answers.
    const ranges = Array.from({ length: 3 }, (_, v) => Array.from({ length: 20 }, (_, k) => k).filter((k) => k % 3 === v).map((k): Range => [k / 20, (k + 1) / 20]));
    const spec = parseRoute(route(ranges.map((r) => ({ ranges: r }))), 'm');
    const a = new Assigner(spec);
    const seen = new Set<number>();
    for (const u of units) {
      const p = a.pick(u);
      expect(p.index, u).toBe(holder(ranges, unitBucket('m', u)));
      expect(p.propensity).toBe(spec.variants[p.index]!.weight);
      seen.add(p.index);
    }
    expect(seen.size).toBe(3);
    expect(spec.variants.map((v) => v.weight)).toEqual(rangeWeights(ranges));
  });

  it('a route given its own cumulative ranges places every unit as its weights did (2, 3 and 12 variants)', () => {
    for (const weights of [[0.9, 0.1], [0.7, 0.2, 0.1], randomWeights(mulberry32(5), 12)]) {
      const spec = parseRoute(route(weights.map((weight) => ({ weight }))), 'm');
      const ranged = rebalanceRoute(spec, spec.variants.map((v) => v.weight), 'm');
      expect(ranged.variants.map((v) => v.ranges)).toEqual(cumulativeRanges(spec.variants.map((v) => v.weight)));
      const a = new Assigner(spec);
      const b = new Assigner(ranged);
      for (const u of units) expect(b.pick(u).index, u).toBe(a.pick(u).index);
    }
  });
});

describe('rebalance', () => {
  it('moves exactly the sum of the gains, keeps a partition, and moves units only from losers to gainers', () => {
    const r = mulberry32(14);
    for (let trial = 0; trial < 200; trial++) {
      const n = 2 + Math.floor(r() * 7);
      let current: VariantRanges = cumulativeRanges(randomWeights(r, n));
      // A chain of changes, so later ones start from fragmented ranges.
      for (let step = 0; step < 6; step++) {
        const target = randomWeights(r, n);
        const before = rangeWeights(current);
        const next = rebalance(current, target);
        checkPartition(next);
        // Exact: each piece starts where the previous one ended, and the last ends at 1.
        const all = next.flatMap((list) => [...list]).sort((x, y) => x[0] - y[0]);
        const ragged = all.filter(([start, end], k) => start !== (k === 0 ? 0 : all[k - 1]![1]) || end - start < MIN_PIECE);
        expect(ragged, 'pieces not starting where the previous ended, or slivers').toEqual([]);
        expect(all[all.length - 1]![1]).toBe(1);
        // One variant's pieces never touch (adjacent ones are merged).
        expect(next.every((list) => list.every(([a], k) => k === 0 || a > list[k - 1]![1]))).toBe(true);
        const after = rangeWeights(next);
        after.forEach((w, i) => expect(Math.abs(w - target[i]!)).toBeLessThan(1e-11));
        const gains = target.reduce((a, t, i) => a + Math.max(0, t - before[i]!), 0);
        expect(Math.abs(movedMass(current, next) - gains), `trial ${trial} step ${step}`).toBeLessThan(1e-11);
        // Points: a point changes variant only from a loser to a gainer.
        for (let k = 0; k < 200; k++) {
          const u = r();
          const was = holder(current, u);
          const now = holder(next, u);
          if (was !== now && !(target[was]! < before[was]! && target[now]! > before[now]!)) {
            expect.fail(`trial ${trial} step ${step}: point ${u} moved from ${was} (${before[was]} -> ${target[was]}) to ${now} (${before[now]} -> ${target[now]})`);
          }
        }
        current = next;
      }
    }
  });

  it('a loser gives up the end of its ranges; the same weights move nothing; back again restores the start', () => {
    const start = cumulativeRanges([third, third, third]);
    const next = rebalance(start, [0.5, 0.25, 0.25]);
    expect(next).toEqual([
      [[0, third], [7 / 12, 2 / 3], [11 / 12, 1]],
      [[third, 7 / 12]],
      [[2 / 3, 11 / 12]],
    ].map((list) => list.map(([a, b]) => [expect.closeTo(a!, 15), expect.closeTo(b!, 15)])));
    expect(movedMass(start, next)).toBeCloseTo(1 / 6, 12);
    expect(rebalance(next, rangeWeights(next))).toEqual(next);
    expect(movedMass(next, rebalance(next, [2, 1, 1]))).toBe(0);
    expect(rebalance(next, [third, third, third])).toEqual(start.map((list) => list.map(([a, b]) => [expect.closeTo(a, 15), expect.closeTo(b, 15)])));
  });

  it('refuses weights that do not fit, and ranges that are not a partition (ROUTE_INVALID)', () => {
    const start = cumulativeRanges([0.5, 0.5]);
    refusedBy(() => rebalance(start, [1]), /1 new weights for 2 variants/);
    for (const w of [0, -1, NaN, Infinity]) refusedBy(() => rebalance(start, [1, w]), /newWeights\[1\] must be a finite number > 0/);
    refusedBy(() => rebalance([[[0, 0.4]], [[0.5, 1]]], [0.5, 0.5]), /no gaps/);
    refusedBy(() => rebalanceRoute(parseRoute(route([{ weight: 1 }, { weight: 1 }], { assignment: 'random' }), 'm'), [1, 2], 'm'), /needs a hash route, not random/);
    // 64 variants of 4 interleaved ranges each (256, the most a route may have): the gainer takes
    // a piece from the end of each of the 63 others, too many ranges for a route.
    const full = parseRoute(route(Array.from({ length: 64 }, (_, v) => ({ ranges: [0, 1, 2, 3].map((q): Range => [(64 * q + v) / 256, (64 * q + v + 1) / 256]) }))), 'm');
    refusedBy(() => rebalanceRoute(full, [2, ...Array<number>(63).fill(1)], 'm'), /^variants: at most 256 ranges in all, not 319/);
  });

  it('segments read the ranges as the Assigner does: the last ends at 1, gaps within the tolerance go to the next piece', () => {
    expect(segments([[[0, 0.5 - 1e-10]], [[0.5, 1 - 1e-10]]])).toEqual({ upper: [0.5 - 1e-10, 1], variant: [0, 1] });
    expect(segments([[[0.5, 1]], [[0, 0.5]]])).toEqual({ upper: [0.5, 1], variant: [1, 0] });
  });
});

describe('a weight change over 20,000 unit ids', () => {
  const n = 20_000;
  const units = Array.from({ length: n }, (_, i) => `user-${i}`);
  const thirds = parseRoute(route([{ weight: 1 }, { weight: 1 }, { weight: 1 }]), 'exp');

  function moves(from: RouteSpec, to: RouteSpec): Array<{ unit: string; was: number; now: number }> {
    const a = new Assigner(from);
    const b = new Assigner(to);
    return units.map((unit) => ({ unit, was: a.pick(unit).index, now: b.pick(unit).index })).filter((m) => m.was !== m.now);
  }
  const sd = (p: number) => Math.sqrt(n * p * (1 - p));

  it('1/3,1/3,1/3 -> 1/2,1/4,1/4 moves ~1/6 of the units with ranges (cumulative weights move ~1/4)', () => {
    const ranged = rebalanceRoute(thirds, [0.5, 0.25, 0.25], 'exp');
    const moved = moves(thirds, ranged);
    expect(Math.abs(moved.length - n / 6), `${moved.length} of ${n} moved (sd ${sd(1 / 6).toFixed(1)})`).toBeLessThan(4 * sd(1 / 6));
    // Each moved unit went to the gainer (a) from a loser (b or c), and its bucket is in a moved piece.
    const before = routeRanges(thirds);
    const after = routeRanges(ranged);
    for (const m of moved) {
      expect(m.now, m.unit).toBe(0);
      expect([1, 2]).toContain(m.was);
    }
    // A unit whose bucket is outside the moved pieces keeps its variant (and one inside moves).
    const movedUnits = new Set(moved.map((m) => m.unit));
    for (const unit of units) {
      const u = unitBucket('exp', unit);
      expect(movedUnits.has(unit), unit).toBe(holder(before, u) !== holder(after, u));
    }
    // The same change without ranges moves a quarter: the boundaries after the first all shift.
    const cumulative = moves(thirds, parseRoute(route([{ weight: 0.5 }, { weight: 0.25 }, { weight: 0.25 }]), 'exp'));
    expect(Math.abs(cumulative.length - n / 4), `${cumulative.length} moved by cumulative weights`).toBeLessThan(4 * sd(1 / 4));
  });

  it('and back to 1/3,1/3,1/3 moves the same units home', () => {
    const ranged = rebalanceRoute(thirds, [0.5, 0.25, 0.25], 'exp');
    const back = rebalanceRoute(ranged, [1, 1, 1], 'exp');
    expect(moves(thirds, back)).toEqual([]);
    const there = moves(thirds, ranged);
    const home = moves(ranged, back);
    expect(home.map((m) => [m.unit, m.now, m.was])).toEqual(there.map((m) => [m.unit, m.was, m.now]));
  });
});
