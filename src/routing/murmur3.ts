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
 * The prefix and the byte-level entry use TextEncoder (not per request); the string path
 * encodes as it goes, and the tests check one against the other.
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

/** Absorbs raw bytes into a state (not on the hot path: prefixes and test vectors). */
function absorbBytes(state: Murmur3State, bytes: Uint8Array): Murmur3State {
  let { h, w, n, len } = state;
  for (let i = 0; i < bytes.length; i++) {
    w |= bytes[i]! << (n << 3);
    len++;
    if (++n === 4) {
      h = mixBlock(h, w);
      w = 0;
      n = 0;
    }
  }
  return { h, w, n, len };
}

/**
 * The hot path: continues from (h, w, n, len) with the UTF-8 bytes of `s`, then finishes.
 * Locals only. Runs of four ASCII characters go in as one 32-bit word (shifted past the
 * pending bytes); anything else is encoded to its UTF-8 bytes, packed into one integer, and
 * pushed byte by byte.
 */
function absorbString(h: number, w: number, n: number, len: number, s: string): number {
  const length = s.length;
  let i = 0;
  while (i < length) {
    if (i + 4 <= length) {
      const c0 = s.charCodeAt(i);
      const c1 = s.charCodeAt(i + 1);
      const c2 = s.charCodeAt(i + 2);
      const c3 = s.charCodeAt(i + 3);
      if ((c0 | c1 | c2 | c3) < 0x80) {
        const x = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
        if (n === 0) {
          h = mixBlock(h, x);
        } else {
          const shift = n << 3;
          h = mixBlock(h, w | (x << shift));
          w = x >>> (32 - shift);
        }
        i += 4;
        len += 4;
        continue;
      }
    }
    let c = s.charCodeAt(i++);
    if (c < 0x80) {
      w |= c << (n << 3);
      len++;
      if (++n === 4) {
        h = mixBlock(h, w);
        w = 0;
        n = 0;
      }
      continue;
    }
    let bytes: number; // up to four UTF-8 bytes, first in the low byte
    let count: number;
    if (c < 0x800) {
      bytes = (0xc0 | (c >>> 6)) | ((0x80 | (c & 0x3f)) << 8);
      count = 2;
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i < length ? s.charCodeAt(i) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          bytes = (0xf0 | (cp >>> 18)) | ((0x80 | ((cp >>> 12) & 0x3f)) << 8) | ((0x80 | ((cp >>> 6) & 0x3f)) << 16) | ((0x80 | (cp & 0x3f)) << 24);
          count = 4;
        } else {
          c = 0xfffd; // a lone surrogate, as TextEncoder encodes it
          bytes = (0xe0 | (c >>> 12)) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
          count = 3;
        }
      } else {
        bytes = (0xe0 | (c >>> 12)) | ((0x80 | ((c >>> 6) & 0x3f)) << 8) | ((0x80 | (c & 0x3f)) << 16);
        count = 3;
      }
    }
    for (let j = 0; j < count; j++) {
      w |= ((bytes >>> (j << 3)) & 0xff) << (n << 3);
      len++;
      if (++n === 4) {
        h = mixBlock(h, w);
        w = 0;
        n = 0;
      }
    }
  }
  return finish(h, w, n, len);
}

function initial(seed: number): Murmur3State {
  return { h: seed | 0, w: 0, n: 0, len: 0 };
}

const utf8 = new TextEncoder();

/**
 * The state after hashing `prefix` from `seed` (to continue with murmur3Finish). The prefix is
 * encoded on its own: one ending in a high surrogate would not pair with a low surrogate that
 * starts the rest (a route's prefix ends in ":").
 */
export function murmur3Prefix(prefix: string, seed = 0): Murmur3State {
  return Object.freeze(absorbBytes(initial(seed), utf8.encode(prefix)));
}

/** MurmurHash3_x86_32 of (the prefix behind `state`) + `s`, as an unsigned 32-bit integer. Allocates nothing. */
export function murmur3Finish(state: Murmur3State, s: string): number {
  return absorbString(state.h, state.w, state.n, state.len, s);
}

/** MurmurHash3_x86_32 of the UTF-8 bytes of `s` with `seed`, as an unsigned 32-bit integer. */
export function murmur3(s: string, seed = 0): number {
  return absorbString(seed | 0, 0, 0, 0, s);
}

/** MurmurHash3_x86_32 of raw bytes (test vectors are given as bytes). */
export function murmur3Bytes(bytes: Uint8Array, seed = 0): number {
  const st = absorbBytes(initial(seed), bytes);
  return finish(st.h, st.w, st.n, st.len);
}
