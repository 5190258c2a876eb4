/**
 * The ceiling for I/O threads (issue #11): bare servers (bench/threads-bare-worker.ts: the same
 * demo-logistic answer as bench/bare-grpc.ts and bench/bare-http.ts, nothing else) in 1 and in 2
 * worker threads sharing one port, measured with h2load in the same run, interleaved:
 *  - gRPC ModelInfer, single row, grpc-js with connections injected from each thread's
 *    SO_REUSEPORT socket (src/net/reuseport.ts): h2load, 16 connections x 4 streams (the kernel hashes connections to threads, so fewer spread unevenly);
 *  - HTTP single-row JSON infer, uWebSockets.js apps on a reserved port: h2load --h1,
 *    32 connections, one request at a time each.
 * Each round runs both thread counts back to back (order alternating) after a warm-up; the
 * figure is the median over rounds of the 2-thread / 1-thread rate ratio, with each thread's
 * share of the calls. Every group's answers are checked first (one per thread at least).
 * Needs h2load (apt-get install nghttp2-client). `npm run bench -- threads-bare [--quick]`.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { reservePort } from '../src/net/reuseport.js';
import { h2loadRate, hasH2load, writeH2loadBodies } from './h2load.js';
import { checkFreshAnswer, singleRequest } from './single-row.js';
import { check, median, table } from './util.js';

type Kind = 'grpc' | 'http';
const HOST = '127.0.0.1';

interface Group {
  kind: Kind;
  port: number;
  threads: Worker[];
}

async function startGroup(kind: Kind, n: number): Promise<Group> {
  const reservation = await reservePort(HOST, 0);
  try {
    const threads = await Promise.all(Array.from({ length: n }, async () => {
      const w = new Worker(new URL('./threads-bare-worker.js', import.meta.url), { workerData: { kind, host: HOST, port: reservation.port } });
      await new Promise((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      return w;
    }));
    return { kind, port: reservation.port, threads };
  } finally {
    reservation.release();
  }
}

async function counts(g: Group): Promise<number[]> {
  return Promise.all(g.threads.map((w) => new Promise<number>((resolve) => {
    w.once('message', (m: { served: number }) => resolve(m.served));
    w.postMessage('count');
  })));
}

async function stopGroup(g: Group): Promise<void> {
  await Promise.all(g.threads.map((w) => new Promise((resolve) => {
    w.once('exit', resolve);
    w.postMessage('stop');
  })));
}

/** One answer per new connection, checked against the formula, until every thread has answered. */
async function checkGroup(g: Group): Promise<void> {
  const before = await counts(g);
  for (let i = 0; i < 64; i++) {
    await checkFreshAnswer(g.kind, `${HOST}:${g.port}`, `bare group of ${g.threads.length}`);
    const now = await counts(g);
    if (now.every((c, t) => c > before[t]!)) return;
  }
  check(false, `${g.kind}: 64 connections did not reach all ${g.threads.length} threads`);
}

export async function runThreadsBare(): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  if (!(await hasH2load())) {
    console.log('h2load not installed (apt-get install nghttp2-client): threads-bare skipped');
    return figures;
  }
  const quick = process.argv.includes('--quick');
  const rounds = quick ? 1 : 3;
  const seconds = quick ? 3 : 5;
  const base = path.join(tmpdir(), `sluice-threads-bare-${process.pid}`);
  let files: Record<Kind, string> | undefined;
  const groups: Group[] = [];
  try {
    for (const kind of ['grpc', 'http'] as const) for (const n of [1, 2]) groups.push(await startGroup(kind, n));
    for (const g of groups) await checkGroup(g);

    // The same single-row request bench/grpc.ts sends.
    files = writeH2loadBodies(base, await singleRequest(`${HOST}:${groups[0]!.port}`));

    const rows: Array<Array<string | number>> = [];
    for (const kind of ['grpc', 'http'] as const) {
      const [one, two] = groups.filter((g) => g.kind === kind) as [Group, Group];
      const rates: Record<1 | 2, number[]> = { 1: [], 2: [] };
      const ratios: number[] = [];
      const before = await counts(two);
      for (let r = 0; r < rounds; r++) {
        const order = r % 2 === 0 ? [one, two] : [two, one];
        const got = new Map<Group, number>();
        for (const g of order) got.set(g, await h2loadRate(kind, `${HOST}:${g.port}`, files[kind], seconds, `bare x${g.threads.length}`));
        rates[1].push(got.get(one)!);
        rates[2].push(got.get(two)!);
        ratios.push(got.get(two)! / got.get(one)!);
      }
      const after = await counts(two);
      const share = after.map((c, t) => c - before[t]!);
      const minShare = Math.min(...share) / share.reduce((a, b) => a + b, 0);
      const ratio = median(ratios);
      figures[`${kind}Ratio`] = ratio;
      figures[`${kind}MinThreadShare`] = minShare;
      const label = kind === 'grpc' ? 'gRPC ModelInfer (grpc-js, injected connections)' : 'HTTP single-row JSON (uWebSockets.js)';
      rows.push([label, median(rates[1]), median(rates[2]), ratio, ratios.map((q) => q.toFixed(2)).join(' '), `${(minShare * 100).toFixed(0)}%`]);
    }
    table(`Bare servers, 1 vs 2 I/O threads on one port: h2load closed loop, ${rounds} interleaved round(s) of ${seconds} s`,
      ['server', '1 thread req/s', '2 threads req/s', '2/1 (median of rounds)', 'each round', 'smaller thread share'], rows);
    console.log('Absolute rates depend on this shared machine; compare only the ratios.');
  } finally {
    await Promise.all(groups.map(stopGroup));
    for (const f of Object.values(files ?? {})) rmSync(f, { force: true });
  }
  return figures;
}
