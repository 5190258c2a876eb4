import { describe, expect, it } from 'vitest';
import { BodyPool } from '../../src/frontend/http/body-pool.js';

describe('BodyPool', () => {
  it('reuses a given-back buffer for a body of the same size class, and never a lent one', () => {
    const pool = new BodyPool();
    const a = pool.take(400_000);
    expect(a.pooled).toBe(true);
    expect(a.buf.byteLength).toBe(524_288);
    expect(a.buf.byteOffset).toBe(0);
    const b = pool.take(400_000);
    expect(b.buf.buffer).not.toBe(a.buf.buffer);
    pool.give(a.buf);
    expect(pool.take(300_000).buf).toBe(a.buf);
    expect(pool.take(300_000).buf).not.toBe(a.buf);
  });

  it('leaves huge bodies to the garbage collector', () => {
    const pool = new BodyPool();
    expect(pool.take(64 * 1024 * 1024)).toMatchObject({ pooled: false });
  });

  it('gives every small body one 4 kB size class, reused', () => {
    const pool = new BodyPool();
    const a = pool.take(1000);
    expect(a).toMatchObject({ pooled: true });
    expect(a.buf.byteLength).toBe(4096);
    pool.give(a.buf);
    expect(pool.take(3000).buf).toBe(a.buf);
    expect(pool.take(0).buf.byteLength).toBe(4096);
  });

  it('keeps at most maxRetained bytes idle', () => {
    const pool = new BodyPool(1 << 20);
    const bufs = Array.from({ length: 5 }, () => pool.take(300_000).buf);
    for (const b of bufs) pool.give(b);
    expect(pool.idleBytes).toBe(2 * 524_288);
  });
});
