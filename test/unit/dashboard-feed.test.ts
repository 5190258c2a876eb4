/**
 * The dashboard's fan-out on one I/O thread (src/service/dashboard-feed.ts) and its SSE viewer
 * (src/frontend/http/routes/dashboard.ts): the control plane is asked once per interval for all
 * viewers, at once for the first, never while nobody watches; slots are shared and given back
 * once; a slow client's snapshots are dropped, not buffered, until uWS says it drained.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DashboardFeed, HEARTBEAT_MS, ViewerSlots, type Viewer } from '../../src/service/dashboard-feed.js';
import { SseViewer } from '../../src/frontend/http/routes/dashboard.js';
import { SluiceError } from '../../src/errors.js';

function viewer() {
  const got: string[] = [];
  const v: Viewer & { got: string[]; ended: boolean } = {
    got, ended: false,
    snapshot: (json) => got.push(json),
    problem: (code) => got.push(`problem ${code}`),
    heartbeat: () => got.push('heartbeat'),
    end: () => (v.ended = true),
  };
  return v;
}

describe('dashboard feed', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('asks once per interval for every viewer, the first at once, and nothing once they leave', async () => {
    let asked = 0;
    const slots = new ViewerSlots(undefined, 4);
    const feed = new DashboardFeed(async () => `{"n":${++asked}}`, slots, 1000);
    expect(slots.take() && slots.take()).toBe(true);
    const a = viewer();
    const b = viewer();
    const leaveA = feed.join(a);
    await vi.advanceTimersByTimeAsync(0);
    expect(asked).toBe(1);
    expect(a.got).toEqual(['{"n":1}']);
    // A second viewer within the interval gets the same snapshot without a new request.
    const leaveB = feed.join(b);
    expect(b.got).toEqual(['{"n":1}']);
    await vi.advanceTimersByTimeAsync(3000);
    expect(asked).toBe(4);
    expect(a.got).toEqual(['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']);
    expect(b.got).toEqual(a.got);
    leaveA();
    leaveA(); // twice: one slot given back
    expect(slots.taken).toBe(1);
    leaveB();
    expect(slots.taken).toBe(0);
    expect(feed.size).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(asked).toBe(4);
  });

  it('sends heartbeats, reports a failed snapshot, and ends every stream on close', async () => {
    let fail = false;
    const feed = new DashboardFeed(async () => {
      if (fail) throw new SluiceError('REGISTRY_UNAVAILABLE', 'database away');
      return '{}';
    }, new ViewerSlots(undefined, 2), 1000);
    const v = viewer();
    feed.join(v);
    await vi.advanceTimersByTimeAsync(0);
    fail = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(v.got).toEqual(['{}', 'problem REGISTRY_UNAVAILABLE']);
    fail = false;
    await vi.advanceTimersByTimeAsync(HEARTBEAT_MS - 1000);
    expect(v.got).toContain('heartbeat');
    feed.close();
    expect(v.ended).toBe(true);
    expect(() => feed.join(viewer())).toThrow(/stopping/);
  });

  it('slots are one count for every thread: a second ViewerSlots over the same memory sees the first', () => {
    const a = new ViewerSlots(new SharedArrayBuffer(4), 2);
    const b = new ViewerSlots(a.buffer, 2);
    expect(a.take()).toBe(true);
    expect(b.take()).toBe(true);
    expect(a.take()).toBe(false);
    expect(b.take()).toBe(false);
    b.give();
    expect(a.take()).toBe(true);
  });
});

describe('SSE viewer', () => {
  /** A uWS response whose writes fail (backpressure) while `full`. */
  function response() {
    const r = {
      writes: [] as string[],
      full: false,
      ended: 0,
      writable: undefined as undefined | ((offset: number) => boolean),
      cork: (fn: () => void) => fn(),
      write(text: string) {
        r.writes.push(text);
        return !r.full;
      },
      end() {
        r.ended++;
      },
      onWritable(fn: (offset: number) => boolean) {
        r.writable = fn;
      },
    };
    return r;
  }

  it('frames snapshots, problems and heartbeats as server-sent events', () => {
    const res = response();
    const v = new SseViewer(res as never);
    v.snapshot('{"a":1}');
    v.problem('INTERNAL', 'bad');
    v.heartbeat();
    expect(res.writes).toEqual(['data: {"a":1}\n\n', 'event: problem\ndata: {"code":"INTERNAL","message":"bad"}\n\n', ': heartbeat\n\n']);
  });

  it('drops snapshots for a slow client until its buffer drains, then sends the current one', () => {
    const res = response();
    const v = new SseViewer(res as never);
    res.full = true;
    v.snapshot('{"n":1}'); // buffered by uWS: the client is now behind
    v.snapshot('{"n":2}');
    v.snapshot('{"n":3}');
    expect(res.writes).toEqual(['data: {"n":1}\n\n']);
    expect(v.dropped).toBe(2);
    res.full = false;
    expect(res.writable!(0)).toBe(true);
    v.snapshot('{"n":4}');
    expect(res.writes).toEqual(['data: {"n":1}\n\n', 'data: {"n":4}\n\n']);
  });

  it('leaves once, whether the client went away or the server ended it', () => {
    const res = response();
    const v = new SseViewer(res as never);
    let left = 0;
    v.leave = () => left++;
    v.aborted();
    v.end();
    v.snapshot('{}');
    expect(left).toBe(1);
    expect(res.ended).toBe(0); // an aborted response is never touched again
    expect(res.writes).toEqual([]);
  });
});
