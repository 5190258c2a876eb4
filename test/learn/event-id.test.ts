/**
 * Event ids (src/learn/event-id.ts): newEventId writes its UUIDv7s itself, byte by byte and
 * text by table; these tests hold it to the `uuid` package's v7 layout given the same time,
 * counter and random bytes, to RFC 9562's version and variant bits, and to what the rest of the
 * engine relies on: ids sort in the order they were made, carry their time, are unique, and
 * carry a chunk's tag and row index when given them.
 */
import { describe, expect, it } from 'vitest';
import { v7 as uuidv7 } from 'uuid';
import { chunkPlace, eventIdTime, lastEventIdBytes, lastEventIdMs, newEventId, uuidText } from '../../src/learn/event-id.js';

/** The 32-bit counter an id's bytes 6-10 carry (uuid's v7Bytes spreads it over them). */
function seqOf(b: Uint8Array): number {
  return (((b[6]! & 0x0f) << 28) | (b[7]! << 20) | ((b[8]! & 0x3f) << 14) | (b[9]! << 6) | (b[10]! >>> 2)) >>> 0;
}

describe('newEventId', () => {
  it('lays out the bytes as uuid v7 does for the same time, counter and random bytes', () => {
    for (let i = 0; i < 2_000; i++) {
      const tagged = i % 2 === 0;
      const id = tagged ? newEventId(i * 7919 % 0x1000000, i % 65_536) : newEventId();
      const bytes = Uint8Array.from(lastEventIdBytes());
      // The id's own bytes as uuid's random input: it reads byte 10's low bits and bytes 11-15 from it.
      const expected = uuidv7({ msecs: lastEventIdMs(), seq: seqOf(bytes) | 0, random: bytes });
      expect(id).toBe(expected);
      expect(uuidText(bytes)).toBe(id);
    }
  });

  it('sets RFC 9562 version 7 and variant 10, and carries its time', () => {
    const before = Date.now();
    const id = newEventId();
    const after = Date.now();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const t = eventIdTime(id)!;
    expect(t).toBe(lastEventIdMs());
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after + 1);
  });

  it('makes ids that sort in the order they were made, all distinct, the counter stepping by one within a millisecond', () => {
    const ids: string[] = [];
    const seqs: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < 50_000; i++) {
      ids.push(newEventId(i % 3 === 0 ? 42 : -1, i % 65_536));
      seqs.push(seqOf(lastEventIdBytes()));
      times.push(lastEventIdMs());
    }
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    let steps = 0;
    for (let i = 1; i < ids.length; i++) {
      if (times[i] === times[i - 1]) {
        expect(seqs[i]).toBe((seqs[i - 1]! + 1) >>> 0);
        steps++;
      }
    }
    // 50,000 ids take a few milliseconds at most: most of them share one with the id before.
    expect(steps).toBeGreaterThan(25_000);
  });

  it('carries the chunk tag and row index it was given', () => {
    for (const [tag, index] of [[0, 0], [0xffffff, 65_535], [0x123456, 258], [1, 65_534]] as const) {
      expect(chunkPlace(newEventId(tag, index))).toEqual({ tag, index });
    }
  });
});
