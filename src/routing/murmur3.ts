/**
 * MurmurHash3 x86_32 (Austin Appleby, public domain; SMHasher's MurmurHash3_x86_32) over the
 * UTF-8 bytes of JavaScript strings, computed straight from the string's UTF-16 code units:
 * no TextEncoder, no buffer, no allocation. It runs once per routed request.
 *
 * Why not the `murmurhash` npm package (2.0.1, the same algorithm by Gary Court)? For a string
 * it builds a new TextEncoder and a new Uint8Array on every call, and it cannot start from a
 * precomputed prefix state. It is a dev dependency here instead: test/unit/routing-assign.test.ts
 * checks this implementation against it on random strings (ASCII, BMP, astral, lone
 * surrogates) and against the published test vectors of MurmurHash3_x86_32.
 *
 * UTF-8 exactly as TextEncoder (WHATWG) makes it: a surrogate pair is one 4-byte code point; a
 * lone surrogate becomes U+FFFD (EF BF BD).
 *
 * A hash state is four numbers: h (the running hash), w (up to three pending bytes, little
 * endian), n (how many are pending), len (bytes so far). `Murmur3State` keeps them so a fixed
 * prefix (a route's salt + ":") is hashed once; `murmur3Finish` continues from a state.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** One 4-byte block into the hash (the body loop of MurmurHash3_x86_32). */
function mixBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** The tail and finalisation: pending bytes `w` (n of them), then length and fmix32. */
function finish(h: number, w: number, n: number, len: number): number {
  if (n > 0) {
    let k = Math.imul(w, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A hash state after some bytes (see the module comment). */
export interface Murmur3State {
  readonly h: number;
  readonly w: number;
  readonly n: number;
  readonly len: number;
}

// The running state of `feed`, module-level so feeding allocates nothing (single-threaded JS:
// feed runs to completion before anyone else reads them).
let sh = 0;
let sw = 0;
let sn = 0;
let slen = 0;

function pushByte(b: number): void {
  sw |= b << (sn << 3);
  slen++;
  if (++sn === 4) {
    sh = mixBlock(sh, sw);
    sw = 0;
    sn = 0;
  }
}

/** Feeds the UTF-8 bytes of `s` into the module state. */
function feed(s: string): void {
  const length = s.length;
  for (let i = 0; i < length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      pushByte(c);
      continue;
    }
    if (c < 0x800) {
      pushByte(0xc0 | (c >>> 6));
      pushByte(0x80 | (c & 0x3f));
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        pushByte(0xf0 | (cp >>> 18));
        pushByte(0x80 | ((cp >>> 12) & 0x3f));
        pushByte(0x80 | ((cp >>> 6) & 0x3f));
        pushByte(0x80 | (cp & 0x3f));
        continue;
      }
      c = 0xfffd; // a lone surrogate, as TextEncoder encodes it
    }
    pushByte(0xe0 | (c >>> 12));
    pushByte(0x80 | ((c >>> 6) & 0x3f));
    pushByte(0x80 | (c & 0x3f));
  }
}

function load(from: Murmur3State | undefined, seed: number): void {
  if (from) {
    sh = from.h;
    sw = from.w;
    sn = from.n;
    slen = from.len;
  } else {
    sh = seed | 0;
    sw = 0;
    sn = 0;
    slen = 0;
  }
}

/**
 * The state after hashing `prefix` from `seed` (to continue with murmur3Finish). The prefix is
 * encoded on its own: one ending in a high surrogate would not pair with a low surrogate that
 * starts the rest (a route's prefix ends in ":").
 */
export function murmur3Prefix(prefix: string, seed = 0): Murmur3State {
  load(undefined, seed);
  feed(prefix);
  return Object.freeze({ h: sh, w: sw, n: sn, len: slen });
}

/** MurmurHash3_x86_32 of (the prefix behind `state`) + `s`, as an unsigned 32-bit integer. */
export function murmur3Finish(state: Murmur3State, s: string): number {
  load(state, 0);
  feed(s);
  return finish(sh, sw, sn, slen);
}

/** MurmurHash3_x86_32 of the UTF-8 bytes of `s` with `seed`, as an unsigned 32-bit integer. */
export function murmur3(s: string, seed = 0): number {
  load(undefined, seed);
  feed(s);
  return finish(sh, sw, sn, slen);
}

/** MurmurHash3_x86_32 of raw bytes (test vectors are given as bytes). */
export function murmur3Bytes(bytes: Uint8Array, seed = 0): number {
  load(undefined, seed);
  for (let i = 0; i < bytes.length; i++) pushByte(bytes[i]!);
  return finish(sh, sw, sn, slen);
}
