/**
 * Event ids: the key that joins a decision to its feedback. Sluice makes UUIDv7s (RFC 9562:
 * 48 bits of Unix milliseconds, then random bits), so ids sort by time and carry the time of
 * their decision, which lets feedback be checked against the join window even while the
 * database is away. Clients may supply ids of their own: any string of 1 to 128 characters
 * without control characters (PostgreSQL text refuses NUL; the rest would only hurt logs).
 */
import { randomFillSync } from 'node:crypto';

export const MAX_EVENT_ID_LENGTH = 128;

/**
 * Random bytes for ids, refilled 1,024 ids at a time: the `uuid` package's own pool refills
 * every 16 ids, and that refill was ~2% of an I/O thread's time at 50k routed requests/s.
 */
const pool = new Uint8Array(16 * 1024);
let poolAt = pool.length;
/** The monotonic clock and counter of RFC 9562's method 1, kept as `uuid`'s own v7 keeps them. */
const clock = { msecs: -Infinity, seq: 0 };
/** The bytes of the id newEventId made last (written in place: no allocation per id). */
const lastBytes = new Uint8Array(16);
const HEX = Array.from({ length: 256 }, (_, i) => (i + 0x100).toString(16).slice(1));
/** Each byte's two hex digits as character codes (high byte first), for writing text into `text`. */
const HEX_CODES = Uint16Array.from(HEX, (h) => (h.charCodeAt(0) << 8) | h.charCodeAt(1));
/** Where each of a UUID's 16 bytes goes in its 36 characters of text (the dashes are fixed). */
const TEXT_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
/** The id's text is written here and read out as one flat string (see newEventId). */
const text = Buffer.alloc(36, 0x2d);

/**
 * A new UUIDv7, monotonic within this thread (a counter within one millisecond, as the `uuid`
 * package's v7 does without options). Its time is lastEventIdMs() until the next call.
 *
 * With a chunk tag (0 .. 2^24-1) and an index (0 .. 65535), its last five bytes are those
 * instead of random: the decision chunk it is stored in and its row there (ChunkPlace), so that
 * feedback finds its decision with one index probe (migration 013). What stays random is the
 * counter's start each millisecond (31 bits) and the tag (24 bits, per chunk): two threads or
 * replicas make the same id only if both match in the same millisecond and row.
 *
 * The bytes are laid out as `uuid`'s v7 lays them out given the same time, counter and random
 * bytes (test/learn/event-id.test.ts compares them), written here instead of through it, and
 * the text is written as bytes and read out once: through `uuid` with its options object and
 * the text built by 20 concatenations an id cost ~310 ns, this way ~130 ns (one per routed
 * request; 2026-12-07, a loop of 2M ids).
 */
export function newEventId(tag = -1, index = 0): string {
  if (poolAt > pool.length - 16) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const r = poolAt;
  poolAt += 16;
  const now = Date.now();
  if (now > clock.msecs) {
    clock.seq = (pool[r + 6]! << 23) | (pool[r + 7]! << 16) | (pool[r + 8]! << 8) | pool[r + 9]!;
    clock.msecs = now;
  } else {
    clock.seq = (clock.seq + 1) | 0;
    if (clock.seq === 0) clock.msecs++;
  }
  const ms = clock.msecs;
  const seq = clock.seq;
  const b = lastBytes;
  // RFC 9562: 48 bits of milliseconds, version 7 and the counter's top 12 bits, variant 10 and
  // its next 14, then its last 6 bits beside 2 random ones: a 32-bit counter as `uuid` keeps it.
  b[0] = (ms / 0x10000000000) & 0xff;
  b[1] = (ms / 0x100000000) & 0xff;
  b[2] = (ms / 0x1000000) & 0xff;
  b[3] = (ms / 0x10000) & 0xff;
  b[4] = (ms / 0x100) & 0xff;
  b[5] = ms & 0xff;
  b[6] = 0x70 | ((seq >>> 28) & 0x0f);
  b[7] = (seq >>> 20) & 0xff;
  b[8] = 0x80 | ((seq >>> 14) & 0x3f);
  b[9] = (seq >>> 6) & 0xff;
  b[10] = ((seq << 2) & 0xff) | (pool[r + 10]! & 0x03);
  if (tag >= 0) {
    b[11] = tag >>> 16;
    b[12] = tag >>> 8;
    b[13] = tag;
    b[14] = index >>> 8;
    b[15] = index;
  } else {
    b[11] = pool[r + 11]!;
    b[12] = pool[r + 12]!;
    b[13] = pool[r + 13]!;
    b[14] = pool[r + 14]!;
    b[15] = pool[r + 15]!;
  }
  for (let i = 0; i < 16; i++) {
    const c = HEX_CODES[b[i]!]!;
    const at = TEXT_AT[i]!;
    text[at] = c >>> 8;
    text[at + 1] = c & 0xff;
  }
  return text.toString('latin1', 0, 36);
}

/**
 * A UUID's text from its 16 bytes at `at`, by table: as `uuid` writes it but without its
 * lower-casing pass (the table is lower case).
 */
export function uuidText(b: Uint8Array, at = 0): string {
  return HEX[b[at]!]! + HEX[b[at + 1]!]! + HEX[b[at + 2]!]! + HEX[b[at + 3]!]! + '-' + HEX[b[at + 4]!]! + HEX[b[at + 5]!]! + '-' +
    HEX[b[at + 6]!]! + HEX[b[at + 7]!]! + '-' + HEX[b[at + 8]!]! + HEX[b[at + 9]!]! + '-' +
    HEX[b[at + 10]!]! + HEX[b[at + 11]!]! + HEX[b[at + 12]!]! + HEX[b[at + 13]!]! + HEX[b[at + 14]!]! + HEX[b[at + 15]!]!;
}

/** The 16 bytes of the id newEventId returned last: a view, valid until its next call. */
export function lastEventIdBytes(): Uint8Array {
  return lastBytes;
}

/** The time (ms since the epoch) the last id from newEventId carries. */
export function lastEventIdMs(): number {
  return clock.msecs;
}

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The decision time (ms since the epoch) a UUIDv7 carries; undefined for any other id. */
export function eventIdTime(id: string): number | undefined {
  if (id.length !== 36 || !V7.test(id)) return undefined;
  return uuidMs(id);
}

/** Where a chunk-tagged event id's decision is stored: its chunk's tag and its row. */
export interface ChunkPlace {
  tag: number;
  index: number;
}

/**
 * The chunk tag and row an id made by newEventId(tag, index) carries (any other UUIDv7 yields
 * random ones, which no chunk's directory confirms), undefined for an id that is not a UUIDv7.
 */
export function chunkPlace(id: string): ChunkPlace | undefined {
  if (id.length !== 36 || !V7.test(id)) return undefined;
  return { tag: parseInt(id.slice(26, 32), 16), index: parseInt(id.slice(32, 36), 16) };
}

/** The 48-bit time of an id known to be a UUIDv7 (no check: for the request path's own ids). */
export function uuidMs(id: string): number {
  return parseInt(id.slice(0, 8), 16) * 65536 + parseInt(id.slice(9, 13), 16);
}

/** A UUID's 32 hex digits without its dashes ('' for a string of another length). */
export function uuidHex(id: string): string {
  return id.length === 36 ? id.slice(0, 8) + id.slice(9, 13) + id.slice(14, 18) + id.slice(19, 23) + id.slice(24) : '';
}

/** Whether `id` may be an event id (Sluice's or a client's). */
export function isValidEventId(id: unknown): id is string {
  return typeof id === 'string' && id.length >= 1 && id.length <= MAX_EVENT_ID_LENGTH && !CONTROL.test(id);
}

/** Same rule for unit ids (also client text that lands in a database column). */
export function isValidUnitId(id: unknown): id is string {
  return isValidEventId(id);
}
