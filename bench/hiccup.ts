/**
 * A hiccup meter (after jHiccup): a separate thread sleeps 1 ms at a time and records how much
 * longer than 1 ms each sleep took. Whatever it sees, every thread on the machine saw: it is the
 * platform's own latency floor, measured beside a benchmark so the two can be compared.
 */
import { Worker } from 'node:worker_threads';

const SOURCE = `
const { parentPort } = require('node:worker_threads');
const hold = new Int32Array(new SharedArrayBuffer(4));
const lateUs = [];
let running = true;
parentPort.on('message', () => { running = false; });
function loop() {
  const until = Date.now() + 50;
  while (Date.now() < until) {
    const t0 = process.hrtime.bigint();
    Atomics.wait(hold, 0, 0, 1);
    lateUs.push(Math.max(0, Number(process.hrtime.bigint() - t0) / 1000 - 1000));
  }
  if (running) setImmediate(loop); else parentPort.postMessage(lateUs);
}
loop();
`;

export interface HiccupFigures { p50: number; p99: number; p999: number; max: number; count: number }

export interface Hiccups {
  stop(): Promise<HiccupFigures>;
}

/** One line for a benchmark's output: how late the platform itself was, in ms. */
export function describeHiccups(h: HiccupFigures): string {
  const ms = (us: number) => (us / 1000).toFixed(2);
  return `platform hiccup meter over the same run (1 ms sleeps, lateness): p50 ${ms(h.p50)}  p99 ${ms(h.p99)}  p99.9 ${ms(h.p999)}  max ${ms(h.max)} ms`;
}

export function startHiccupMeter(): Hiccups {
  const w = new Worker(SOURCE, { eval: true });
  return {
    async stop() {
      const late = await new Promise<number[]>((resolve) => {
        w.once('message', resolve);
        w.postMessage('stop');
      });
      await w.terminate();
      late.sort((a, b) => a - b);
      const q = (p: number) => late[Math.min(late.length - 1, Math.floor((p / 100) * late.length))] ?? 0;
      return { p50: q(50), p99: q(99), p999: q(99.9), max: late[late.length - 1] ?? 0, count: late.length };
    },
  };
}
