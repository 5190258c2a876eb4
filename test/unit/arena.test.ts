import { describe, expect, it } from 'vitest';
import { Arena } from '../../src/dispatch/arena.js';
import { mulberry32 } from '../helpers/random.js';

describe('tensor arena allocator', () => {
  it('hands out aligned, disjoint regions and refuses when full', () => {
    const arena = new Arena(1024);
    const a = arena.alloc(100)!;
    const b = arena.alloc(1)!;
    expect(a % 64).toBe(0);
    expect(b % 64).toBe(0);
    expect(b).toBeGreaterThanOrEqual(a + 128);
    expect(arena.alloc(2048)).toBeUndefined();
  });

  it('coalesces freed regions so the whole arena is usable again (random churn)', () => {
    const arena = new Arena(64 * 1024);
    const r = mulberry32(9);
    const live: Array<{ at: number; size: number }> = [];
    for (let i = 0; i < 5000; i++) {
      if (live.length > 0 && r() < 0.5) {
        const { at } = live.splice(Math.floor(r() * live.length), 1)[0]!;
        arena.release(at);
      } else {
        const size = 1 + Math.floor(r() * 4000);
        const at = arena.alloc(size);
        if (at === undefined) continue;
        for (const o of live) expect(at + size <= o.at || o.at + o.size <= at).toBe(true);
        live.push({ at, size });
      }
    }
    for (const { at } of live) arena.release(at);
    expect(arena.bytesInUse).toBe(0);
    expect(arena.alloc(64 * 1024)).toBe(0);
  });

  it('refuses to free a region twice', () => {
    const arena = new Arena(1024);
    const a = arena.alloc(10)!;
    arena.release(a);
    expect(() => arena.release(a)).toThrow();
  });
});
