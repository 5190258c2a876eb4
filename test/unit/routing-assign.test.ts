/**
 * Variant assignment (src/routing/assign.ts) and its hash (src/routing/murmur3.ts): MurmurHash3
 * x86_32 against published test vectors and against the `murmurhash` npm package, the 90/10
 * split over 20,000 units, stickiness, exact propensities, shadows.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import murmurhash from 'murmurhash';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { Assigner, unitBucket } from '../../src/routing/assign.js';
import { murmur3, murmur3Bytes, murmur3Finish, murmur3Prefix } from '../../src/routing/murmur3.js';
import { parseRoute } from '../../src/routing/route.js';
import { mulberry32 } from '../helpers/random.js';

const run = promisify(execFile);

/**
 * Published MurmurHash3_x86_32 vectors: the byte-level ones from SMHasher's verification set as
 * collected in "MurmurHash3 test vectors" (Ian Boyd, Stack Overflow question 14747343) and the
 * string ones Wikipedia's MurmurHash article lists, seed 0x9747b28c (UTF-8 for "π").
 */
const BYTE_VECTORS: Array<[number[], number, number]> = [
  [[], 0, 0],
  [[], 1, 0x514e28b7],
  [[], 0xffffffff, 0x81f16f39],
  [[0xff, 0xff, 0xff, 0xff], 0, 0x76293b50],
  [[0x21, 0x43, 0x65, 0x87], 0, 0xf55b516b],
  [[0x21, 0x43, 0x65, 0x87], 0x5082edee, 0x2362f9de],
  [[0x21, 0x43, 0x65], 0, 0x7e4a8634],
  [[0x21, 0x43], 0, 0xa0f7b07a],
  [[0x21], 0, 0x72661cf4],
  [[0, 0, 0, 0], 0, 0x2362f9de],
  [[0, 0, 0], 0, 0x85f0b427],
  [[0, 0], 0, 0x30f4c306],
  [[0], 0, 0x514e28b7],
];

const STRING_VECTORS: Array<[string, number, number]> = [
  ['', 0, 0],
  ['', 1, 0x514e28b7],
  ['', 0xffffffff, 0x81f16f39],
  ['\u0000\u0000\u0000\u0000', 0, 0x2362f9de],
  ['aaaa', 0x9747b28c, 0x5a97808a],
  ['aaa', 0x9747b28c, 0x283e0130],
  ['aa', 0x9747b28c, 0x5d211726],
  ['a', 0x9747b28c, 0x7fa09ea6],
  ['abcd', 0x9747b28c, 0xf0478627],
  ['abc', 0x9747b28c, 0xc84a62dd],
  ['ab', 0x9747b28c, 0x74875592],
  ['Hello, world!', 0x9747b28c, 0x24884cba],
  ['ππππππππ', 0x9747b28c, 0xd58063c1],
  ['a'.repeat(256), 0x9747b28c, 0x37405bdc],
  ['abc', 0, 0xb3dd93fa],
  ['abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq', 0, 0xee925b90],
  ['The quick brown fox jumps over the lazy dog', 0x9747b28c, 0x2fa826cd],
];

/** Strings with every UTF-8 length class, surrogate pairs and lone surrogates. */
function randomString(r: () => number): string {
  const n = Math.floor(r() * 24);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.4) s += String.fromCharCode(0x20 + Math.floor(r() * 95));
    else if (k < 0.6) s += String.fromCharCode(0x80 + Math.floor(r() * 0x780));
    else if (k < 0.75) s += String.fromCharCode(0x800 + Math.floor(r() * (0xd800 - 0x800)));
    else if (k < 0.9) s += String.fromCodePoint(0x10000 + Math.floor(r() * 0xfffff));
    else s += String.fromCharCode(0xd800 + Math.floor(r() * 0x800)); // a lone surrogate (high or low)
  }
  return s;
}

describe('MurmurHash3 x86_32 (src/routing/murmur3.ts)', () => {
  it('matches the published test vectors, byte and string ones', () => {
    for (const [bytes, seed, want] of BYTE_VECTORS) {
      expect(murmur3Bytes(Uint8Array.from(bytes), seed), `bytes [${bytes}] seed ${seed}`).toBe(want);
      // The npm package agrees on every vector too (a second implementation of the reference).
      expect(murmurhash.v3(Uint8Array.from(bytes), seed >>> 0), `package: bytes [${bytes}] seed ${seed}`).toBe(want);
    }
    for (const [s, seed, want] of STRING_VECTORS) {
      expect(murmur3(s, seed), `${JSON.stringify(s.slice(0, 20))} seed ${seed}`).toBe(want);
      expect(murmurhash.v3(s, seed), `package: ${JSON.stringify(s.slice(0, 20))}`).toBe(want);
    }
  });

  it('equals the murmurhash package (TextEncoder UTF-8) on 20,000 random strings, lone surrogates included', () => {
    const r = mulberry32(12);
    for (let i = 0; i < 20_000; i++) {
      const s = randomString(r);
      const seed = Math.floor(r() * 2 ** 32);
      expect(murmur3(s, seed), JSON.stringify(s)).toBe(murmurhash.v3(s, seed));
    }
  });

  it('continues from a prefix state exactly as hashing the whole string', () => {
    const r = mulberry32(3);
    for (let i = 0; i < 2_000; i++) {
      // Ends like a route's prefix (salt + ":"): a prefix is encoded on its own, so one ending
      // in half a surrogate pair would not join the other half (see murmur3Prefix).
      const a = `${randomString(r)}:`;
      const b = randomString(r);
      expect(murmur3Finish(murmur3Prefix(a), b)).toBe(murmur3(a + b));
      // A state is reusable: the second use gives the same answer.
      const p = murmur3Prefix(a, 7);
      expect(murmur3Finish(p, b)).toBe(murmur3Finish(p, b));
      expect(murmur3Finish(p, b)).toBe(murmur3(a + b, 7));
    }
  });
});

describe('unitBucket and Assigner', () => {
  const ninetyTen = parseRoute({ variants: [{ name: 'a', version: '1', weight: 0.9 }, { name: 'b', version: '2', weight: 0.1 }], assignment: 'hash' }, 'fraud');

  it('unitBucket is MurmurHash3 x86_32 of UTF-8 salt + ":" + unit id (seed 0) over 2^32, in [0, 1)', () => {
    expect(unitBucket('fraud', 'user-1')).toBe(murmurhash.v3('fraud:user-1') / 2 ** 32);
    expect(unitBucket('π', 'ü')).toBe(murmurhash.v3(Buffer.from('π:ü', 'utf8')) / 2 ** 32);
    const r = mulberry32(9);
    for (let i = 0; i < 5000; i++) {
      const b = unitBucket(randomString(r), randomString(r));
      expect(b >= 0 && b < 1).toBe(true);
    }
  });

  it('a 90/10 hash route over 20,000 distinct unit ids splits within 4 standard deviations of 0.9', () => {
    const assigner = new Assigner(ninetyTen);
    const n = 20_000;
    let onA = 0;
    for (let i = 0; i < n; i++) if (assigner.pick(`unit-${i}`).index === 0) onA++;
    const sd = Math.sqrt(n * 0.9 * 0.1); // ~42.4 units
    expect(Math.abs(onA - n * 0.9), `${onA} of ${n} on a (sd ${sd.toFixed(1)})`).toBeLessThan(4 * sd);
    // The split follows the bucket: variant a exactly when the bucket is below 0.9.
    for (let i = 0; i < 1000; i++) expect(assigner.pick(`unit-${i}`).index).toBe(unitBucket('fraud', `unit-${i}`) < 0.9 ? 0 : 1);
  });

  it('is sticky: the same unit gets the same variant on 1,000 repeats, from two Assigners, and in another process', async () => {
    const one = new Assigner(ninetyTen);
    const two = new Assigner(parseRoute({ variants: [{ name: 'a', version: '1', weight: 9 }, { name: 'b', version: '2', weight: 1 }], assignment: 'hash' }, 'fraud'));
    const units = Array.from({ length: 200 }, (_, i) => `customer-${i * 7919}`);
    const first = units.map((u) => one.pick(u).index);
    expect(new Set(first).size, 'both variants occur among 200 units').toBe(2);
    for (let k = 0; k < 1000; k++) {
      const u = units[k % units.length]!;
      const random = () => {
        throw new Error('a hash pick with a unit id must not draw a random number');
      };
      expect(one.pick(u, random).index).toBe(first[k % units.length]);
      expect(two.pick(u, random).index).toBe(first[k % units.length]);
    }
    // A separate Node process (a restart, another replica) computes the same assignments.
    const script = `
      const { Assigner } = await import(${JSON.stringify(path.join(projectRoot, 'dist/src/routing/assign.js'))});
      const { parseRoute } = await import(${JSON.stringify(path.join(projectRoot, 'dist/src/routing/route.js'))});
      const a = new Assigner(parseRoute(${JSON.stringify({ variants: [{ name: 'a', version: '1', weight: 0.9 }, { name: 'b', version: '2', weight: 0.1 }], assignment: 'hash' })}, 'fraud'));
      console.log(JSON.stringify(${JSON.stringify(units)}.map((u) => a.pick(u).index)));`;
    const out = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(JSON.parse(out.stdout)).toEqual(first);
  });

  it('salt changes the assignment; a route without a unit id (or an empty one) assigns at random per request', () => {
    const salted = new Assigner(parseRoute({ variants: [{ name: 'a', version: '1', weight: 0.5 }, { name: 'b', version: '2', weight: 0.5 }], assignment: 'hash', salt: 'experiment-2' }, 'fraud'));
    const plain = new Assigner(parseRoute({ variants: [{ name: 'a', version: '1', weight: 0.5 }, { name: 'b', version: '2', weight: 0.5 }], assignment: 'hash' }, 'fraud'));
    let differ = 0;
    for (let i = 0; i < 1000; i++) if (salted.pick(`u${i}`).index !== plain.pick(`u${i}`).index) differ++;
    expect(differ).toBeGreaterThan(400);
    expect(differ).toBeLessThan(600);
    expect(plain.pick(undefined, () => 0.2).index).toBe(0);
    expect(plain.pick(undefined, () => 0.7).index).toBe(1);
    expect(plain.pick('', () => 0.7).index).toBe(1);
  });

  it('random assignment uses the random number over cumulative weights in spec order, whatever the unit id', () => {
    const spec = parseRoute({ variants: [{ name: 'a', version: '1', weight: 2 }, { name: 'b', version: '2', weight: 1 }, { name: 'c', version: '3', weight: 1 }], assignment: 'random' }, 'm');
    const a = new Assigner(spec);
    const at = (u: number) => a.pick('same-unit', () => u);
    expect([0, 0.49999, 0.5, 0.74999, 0.75, 0.99999999].map((u) => at(u).index)).toEqual([0, 0, 1, 1, 2, 2]);
    const r = mulberry32(4);
    const counts = [0, 0, 0];
    for (let i = 0; i < 20_000; i++) counts[a.pick('same-unit', r).index]!++;
    // 4 sd of a binomial each.
    [0.5, 0.25, 0.25].forEach((p, i) => expect(Math.abs(counts[i]! - 20_000 * p)).toBeLessThan(4 * Math.sqrt(20_000 * p * (1 - p))));
  });

  it('propensities are exact: the variant\'s normalised weight, for hash and random', () => {
    const weights = [0.7, 0.2, 0.1];
    for (const assignment of ['hash', 'random'] as const) {
      const spec = parseRoute({ variants: weights.map((weight, i) => ({ name: `v${i}`, version: '1', weight })), assignment }, 'm');
      const a = new Assigner(spec);
      const r = mulberry32(8);
      const seen = new Set<number>();
      for (let i = 0; i < 3000; i++) {
        const p = a.pick(`unit-${i}`, r);
        expect(p.propensity).toBe(spec.variants[p.index]!.weight);
        seen.add(p.index);
      }
      expect([...seen].sort()).toEqual([0, 1, 2]);
    }
    // Unnormalised input: 3:1 gives exactly 0.75 and 0.25.
    const a = new Assigner(parseRoute({ variants: [{ name: 'a', version: '1', weight: 3 }, { name: 'b', version: '2', weight: 1 }], assignment: 'random' }, 'm'));
    expect(a.pick(undefined, () => 0.1)).toEqual({ index: 0, propensity: 0.75 });
    expect(a.pick(undefined, () => 0.9)).toEqual({ index: 1, propensity: 0.25 });
    // One variant: always it, propensity 1.
    const single = new Assigner(parseRoute({ variants: [{ name: 'only', version: '1', weight: 0.3 }], assignment: 'hash' }, 'm'));
    expect(single.pick('x')).toEqual({ index: 0, propensity: 1 });
  });

  it('shadowPick mirrors with the shadow\'s fraction (1 = always); an unknown shadow never', () => {
    const a = new Assigner(parseRoute({ variants: [{ name: 'a', version: '1', weight: 1 }], assignment: 'hash', shadows: [{ version: '2', fraction: 0.25 }, { version: '3', fraction: 1 }] }, 'm'));
    expect(a.shadowPick(0, () => 0.2499)).toBe(true);
    expect(a.shadowPick(0, () => 0.25)).toBe(false);
    expect(a.shadowPick(1, () => 0.999999)).toBe(true);
    expect(a.shadowPick(2, () => 0)).toBe(false);
    const r = mulberry32(5);
    let n = 0;
    for (let i = 0; i < 20_000; i++) if (a.shadowPick(0, r)) n++;
    expect(Math.abs(n - 5000)).toBeLessThan(4 * Math.sqrt(20_000 * 0.25 * 0.75));
  });
});
