/**
 * The state cell (src/learn/state-cell.ts): a writer on another thread publishing as fast as it
 * can while this thread reads; a read that `stable` accepts is always one whole publication
 * (every value equal to its state number, events = 10 x state) and states never go backwards.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { StateCell } from '../../src/learn/state-cell.js';
import { projectRoot } from '../../src/paths.js';

describe('StateCell', () => {
  it('starts empty, publishes whole states with their counters', () => {
    const cell = new StateCell(3);
    expect(cell.counters()).toEqual({ state: 0, events: 0 });
    cell.publish(Float64Array.from([1, 2, 3]), 4, 40);
    const v = cell.read();
    expect([...v.data]).toEqual([1, 2, 3]);
    expect(cell.stable(v)).toBe(true);
    expect(new StateCell(cell.buffer).counters()).toEqual({ state: 4, events: 40 });
    expect(() => cell.publish(new Float64Array(2), 5, 50)).toThrow(RangeError);
  });

  it('never hands a reader a torn state while another thread publishes', async () => {
    const cell = new StateCell(4096);
    const count = 20_000;
    const worker = new Worker(new URL('../fixtures/state-cell-writer.mjs', import.meta.url), {
      workerData: { buffer: cell.buffer, count, cellModule: pathToFileURL(path.join(projectRoot, 'dist/src/learn/state-cell.js')).href },
    });
    const done = new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    let finished = false;
    void done.then(() => (finished = true));
    let reads = 0;
    let torn = 0;
    let last = 0;
    // Reads on this thread until the writer is done (yielding now and then for its message).
    while (!finished) {
      for (let i = 0; i < 200; i++) {
        const v = cell.read();
        const first = v.data[0]!;
        let whole = true;
        for (let j = 1; j < v.data.length; j += 97) if (v.data[j] !== first) whole = false;
        const state = v.state;
        const events = v.events;
        if (!cell.stable(v)) {
          torn++;
          continue;
        }
        reads++;
        expect(whole).toBe(true);
        expect(first).toBe(state);
        expect(events).toBe(state * 10);
        expect(state).toBeGreaterThanOrEqual(last);
        last = state;
      }
      await new Promise((r) => setImmediate(r));
    }
    expect(await done).toBe(count);
    expect(reads).toBeGreaterThan(0);
    expect(cell.counters()).toEqual({ state: count, events: count * 10 });
    // How often a read had to be retried (informative: it depends on the machine).
    console.log(`state cell: ${reads} stable reads, ${torn} retried`);
    await worker.terminate();
  });
});
