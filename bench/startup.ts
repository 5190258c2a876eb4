/**
 * `npm run bench -- startup`: how long a first `npm start` (dist/src/main.js on an empty data
 * directory: initdb of the embedded registry, migrations, the demo models registered and loaded)
 * takes to its "serving" line on a quiet machine, and beside busy neighbours: two other
 * processes spinning (`for(;;){}`, nice 0), as on a laptop building something or a shared CI
 * runner. Rounds interleave quiet and busy starts; the busy figure is stated as a ratio to the
 * quiet one of the same run. Then, once serving (neighbours still busy, or not), the median of
 * 20 registry reads in a row (`GET /v1/admin/audit?limit=5`): the database thread's nice value
 * at work. Correctness first: each server's demo-logistic answers are the documented formula
 * (bench/engine-util.ts).
 *
 * The embedded database's thread used to take SLUICE_EMBEDDED_DB_NICE (19) from its first
 * moment: beside two spinning processes on two cores a first start then took ~4 minutes,
 * because start-up is mostly that thread's work (src/registry/pglite-thread.ts yieldToServing).
 * `npm run bench -- startup --also=SLUICE_EMBEDDED_DB_NICE=19[,ENV=V]` starts the servers with those settings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startSluiceProcess } from '../loadtest/sluice-process.js';
import { checkDemoLogisticOverHttp } from './engine-util.js';
import { alsoEnv, check, median, table } from './util.js';

const BUSY = 2;

async function registryReadMs(url: string, key: string): Promise<number> {
  const took: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const r = await fetch(`${url}/v1/admin/audit?limit=5`, { headers: { authorization: `Bearer ${key}` } });
    const body = (await r.json()) as unknown;
    took.push(performance.now() - t0);
    check(r.status === 200 && typeof body === 'object' && body !== null, `audit read answered ${r.status}`);
  }
  return median(took);
}

/** One first start: ms to "serving", then the median registry read (ms). */
async function startOnce(busy: number): Promise<{ startMs: number; readMs: number }> {
  const spinners: ChildProcess[] = Array.from({ length: busy }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  const key = `sk_bench_${randomBytes(16).toString('hex')}`;
  try {
    const s = await startSluiceProcess({ env: { SLUICE_ADMIN_KEY: key, ...alsoEnv() } });
    try {
      await checkDemoLogisticOverHttp(s.http);
      return { startMs: s.startMs, readMs: await registryReadMs(s.http, key) };
    } finally {
      await s.stop();
    }
  } finally {
    for (const c of spinners) c.kill('SIGKILL');
  }
}

export async function runStartup(): Promise<void> {
  const rounds = Number(process.env.SLUICE_BENCH_ROUNDS ?? 2);
  const quiet: Array<{ startMs: number; readMs: number }> = [];
  const busy: Array<{ startMs: number; readMs: number }> = [];
  for (let r = 0; r < rounds; r++) {
    quiet.push(await startOnce(0));
    busy.push(await startOnce(BUSY));
    const q = quiet[r]!;
    const b = busy[r]!;
    console.log(`round ${r + 1}: quiet ${(q.startMs / 1000).toFixed(1)} s (registry read ${q.readMs.toFixed(1)} ms), beside ${BUSY} busy processes ${(b.startMs / 1000).toFixed(1)} s (${b.readMs.toFixed(1)} ms)`);
  }
  const row = (name: string, xs: typeof quiet, base: typeof quiet) => {
    const start = median(xs.map((x) => x.startMs));
    const read = median(xs.map((x) => x.readMs));
    return [name, (start / 1000).toFixed(1), (start / median(base.map((x) => x.startMs))).toFixed(2), read.toFixed(1), (read / median(base.map((x) => x.readMs))).toFixed(2)];
  };
  table(`first start to "serving" (empty data directory), then a registry read once serving; medians of ${rounds} interleaved rounds`, ['machine', 'start s', 'ratio to quiet', 'read ms', 'ratio to quiet'], [
    row('quiet', quiet, quiet),
    row(`beside ${BUSY} busy processes`, busy, quiet),
  ]);
}
