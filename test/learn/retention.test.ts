/** The checkpoint retention policy, on its own: which rows survive at a given time. */
import { describe, expect, it } from 'vitest';
import { selectRetained, type Dated } from '../../src/learn/retention.js';

const H = 3_600_000;
const D = 24 * H;
// A fixed "now" in the middle of a UTC hour and day: 2025-03-10 12:30 UTC.
const NOW = Date.UTC(2025, 2, 10, 12, 30);

function rows(times: number[]): Dated[] {
  return times.map((createdAt, i) => ({ id: i + 1, createdAt }));
}

const ids = (s: Set<number>): number[] => [...s].sort((a, b) => a - b);

describe('selectRetained', () => {
  it('keeps the newest `last` rows whatever their age, by time then id', () => {
    const r = rows([NOW - 50 * D, NOW - 40 * D, NOW - 30 * D, NOW - 30 * D]);
    // ids 3 and 4 share a time: id 4 (inserted later) is the newer.
    expect(ids(selectRetained(r, NOW, { last: 1, hourly: 0, daily: 0 }))).toEqual([4]);
    expect(ids(selectRetained(r, NOW, { last: 2, hourly: 0, daily: 0 }))).toEqual([3, 4]);
    expect(ids(selectRetained(r, NOW, { last: 9, hourly: 0, daily: 0 }))).toEqual([1, 2, 3, 4]);
  });

  it('keeps the newest row of each of the last `hourly` calendar hours', () => {
    // Every 10 minutes for 5 hours back from now (12:30, 12:20, ..., 07:40).
    const r = rows(Array.from({ length: 30 }, (_, i) => NOW - i * 10 * 60_000));
    const keep = selectRetained(r, NOW, { last: 1, hourly: 3, daily: 0 });
    // Hours 12:00 (12:30 = id 1), 11:00 (11:50 = id 5), 10:00 (10:50 = id 11).
    expect(ids(keep)).toEqual([1, 5, 11]);
  });

  it('keeps the newest row of each of the last `daily` calendar days, and nothing older', () => {
    // One row every 6 hours for 10 days back.
    const r = rows(Array.from({ length: 40 }, (_, i) => NOW - i * 6 * H));
    const keep = selectRetained(r, NOW, { last: 1, hourly: 0, daily: 3 });
    const kept = [...keep].map((id) => new Date(r[id - 1]!.createdAt).toISOString());
    expect(kept.sort()).toEqual(['2025-03-08T18:30:00.000Z', '2025-03-09T18:30:00.000Z', '2025-03-10T12:30:00.000Z']);
  });

  it('combines the three sets, and a gap in time leaves a bucket empty rather than reaching further back', () => {
    const r = rows([
      NOW - 5 * 60_000, // id 1: this hour
      NOW - 10 * 60_000, // id 2: this hour, older
      NOW - 3 * H, // id 3: three hours back (outside hourly: 2; today's newest is id 1)
      NOW - 2 * D, // id 4: two days back
      NOW - 9 * D, // id 5: outside daily: 7
    ]);
    expect(ids(selectRetained(r, NOW, { last: 2, hourly: 2, daily: 7 }))).toEqual([1, 2, 4]);
    expect(ids(selectRetained(r, NOW, { last: 2, hourly: 4, daily: 7 }))).toEqual([1, 2, 3, 4]);
    expect(ids(selectRetained(r, NOW, { last: 1, hourly: 2, daily: 0 }))).toEqual([1]);
  });

  it('keeps rows stamped after `now` (another replica\'s clock ahead) as the current bucket\'s newest', () => {
    const r = rows([NOW + 2 * 60_000, NOW - 60_000, NOW - 2 * H]);
    expect(ids(selectRetained(r, NOW, { last: 1, hourly: 1, daily: 0 }))).toEqual([1]);
  });

  it('refuses a policy that could prune the newest checkpoint, or is not whole numbers', () => {
    for (const p of [{ last: 0, hourly: 1, daily: 1 }, { last: 1.5, hourly: 0, daily: 0 }, { last: 1, hourly: -1, daily: 0 }, { last: 1, hourly: 0, daily: Number.NaN }]) {
      expect(() => selectRetained([], NOW, p)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(selectRetained([], NOW, { last: 1, hourly: 0, daily: 0 }).size).toBe(0);
  });
});
