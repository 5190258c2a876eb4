/**
 * What it costs to hand work to another thread on this machine: the figures behind the
 * dispatch design (see src/dispatch/board.ts). Round trips of an empty message:
 *  - postMessage ping-pong (what piscina.run does per task),
 *  - Atomics.wait / notify with a sleeping peer,
 *  - a peer that is already awake, polling shared memory (the board's worker sessions).
 */
import { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { table } from './util.js';

const ECHO = `
const { parentPort, workerData } = require('node:worker_threads');
if (workerData.mode === 'message') parentPort.on('message', (m) => parentPort.postMessage(m));
else {
  const i32 = new Int32Array(workerData.sab);
  let last = 0;
  for (;;) {
    if (workerData.mode === 'spin') { while (Atomics.load(i32, 0) === last) {} }
    else Atomics.wait(i32, 0, last);
    last = Atomics.load(i32, 0);
    if (last < 0) break;
    Atomics.store(i32, 1, last);
    Atomics.notify(i32, 1);
  }
}`;

async function measure(mode: 'message' | 'wait' | 'spin', ms: number): Promise<hdr.Histogram> {
  const sab = new SharedArrayBuffer(8);
  const i32 = new Int32Array(sab);
  const w = new Worker(ECHO, { eval: true, workerData: { mode, sab } });
  await new Promise((r) => setTimeout(r, 50));
  // Nanoseconds: the polling case is well under a microsecond.
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: 3 });
  const until = performance.now() + ms;
  for (let n = 1; performance.now() < until; n++) {
    const t0 = process.hrtime.bigint();
    if (mode === 'message') {
      await new Promise((r) => {
        w.once('message', r);
        w.postMessage(n);
      });
    } else {
      Atomics.store(i32, 0, n);
      Atomics.notify(i32, 0);
      while (Atomics.load(i32, 1) !== n) if (mode === 'wait') Atomics.wait(i32, 1, n - 1, 5);
    }
    h.recordValue(Math.max(1, Number(process.hrtime.bigint() - t0)));
  }
  if (mode !== 'message') {
    Atomics.store(i32, 0, -1);
    Atomics.notify(i32, 0);
  }
  await w.terminate();
  return h;
}

export async function runHandoff(): Promise<Record<string, number>> {
  const rows: Array<Array<string | number>> = [];
  const figures: Record<string, number> = {};
  for (const [mode, label] of [['message', 'postMessage ping-pong'], ['wait', 'Atomics.wait/notify (peer asleep)'], ['spin', 'shared memory, peer polling']] as const) {
    const h = await measure(mode, 1000);
    rows.push([label, h.totalCount, h.getValueAtPercentile(50) / 1000, h.getValueAtPercentile(99) / 1000, h.maxValue / 1000]);
    figures[`${mode}.p50us`] = h.getValueAtPercentile(50) / 1000;
  }
  table('Thread hand-off round trip, microseconds', ['mechanism', 'count', 'p50', 'p99', 'max'], rows);
  return figures;
}
