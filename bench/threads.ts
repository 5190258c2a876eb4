/**
 * Issue #11's acceptance figures: Sluice itself (`npm start` as a child process, default pool
 * workers, embedded registry in a fresh data directory, the bundled demo models) with
 * SLUICE_IO_THREADS=1 and =2, side by side in one run, the load generators on the same machine.
 * bench/threads-bare.ts is the ceiling (bare servers in 1 and 2 threads); this is what the
 * engine gets of it.
 *  0. Correctness first: demo-logistic's answers over gRPC and HTTP, each over a fresh
 *     connection, equal the formula, for every server (16 of each). When Sluice exposes
 *     per-thread counters (`sluice_io_thread_requests_total{thread="<n>"}` in /metrics), fresh
 *     connections are made until every configured thread has answered some (64 at most, else
 *     the check fails);
 *     without them it says "per-thread counters not available" and goes on.
 *  1. Capacity, closed loop with h2load (bench/h2load.ts), on a pair started with admission
 *     control off (SLUICE_ADMISSION=0: a saturating closed loop otherwise makes Sluice refuse
 *     a third of the calls, cheaply, and h2load counts gRPC refusals as answers): gRPC ModelInfer
 *     single row, 16 connections x 4 streams, and HTTP single-row JSON, --h1, 32 connections. Rounds
 *     interleave 1 and 2 threads, alternating which goes first; the figure is the median of the
 *     per-round 2/1 ratios, against #11's targets (gRPC >= 1.4x, HTTP >= 1.3x). h2load cannot
 *     see a gRPC error (it arrives as HTTP 200 with grpc-status in the trailers), so every run
 *     also reads Sluice's own sluice_errors_total: a figure with server-side errors is invalid.
 *  2. Open loop, on a second pair in the default configuration, warmed by 2 s of h2load (as is
 *     the bare server): the Go generator (bench/go-load.ts) offers SLUICE_BENCH_GRPC_GO_RATE (default
 *     10,000) ModelInfer calls/s for 30 s (--quick: 5 s) over 8 connections (so both threads
 *     get some) to Sluice with 2 I/O threads, then to the bare grpc-js server in one thread
 *     (bench/bare-grpc.ts, for scale), then to Sluice with 1 I/O thread; each beside a hiccup
 *     meter, with Sluice's admission refusals by reason. The 2-thread run passes with 0 errors
 *     and p99 < 10 ms.
 * Per-thread shares and server CPU (from /proc/<pid>/stat) are printed with every figure.
 * `npm run bench -- threads [--quick]`.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startSluiceProcess, type SluiceProcess } from '../loadtest/sluice-process.js';
import { buildGoLoad, describeGoLoad, goLoad, type GoLoadReport } from './go-load.js';
import { h2loadRate, hasH2load, writeH2loadBodies, type Protocol } from './h2load.js';
import { describeHiccups, startHiccupMeter } from './hiccup.js';
import { startBare } from './server-process.js';
import { checkFreshAnswer, singleRequest } from './single-row.js';
import { check, fmt, median, refusalsByReason, table } from './util.js';

const TARGET: Record<Protocol, number> = { grpc: 1.4, http: 1.3 };
const OPEN_LOOP_CONNECTIONS = 8;
const OPEN_LOOP_P99_MS = 10;

interface Server {
  label: string;
  threads: number;
  proc: SluiceProcess;
  /** host:port of each protocol. */
  address: Record<Protocol, string>;
}

/**
 * What one /metrics read tells: requests per I/O thread (null: no such metric), errors returned,
 * and admission control's refusals by reason.
 */
interface Scrape {
  perThread: Map<string, number> | null;
  errors: number;
  refused: Map<string, number>;
}

/**
 * Children still running. A failed check exits the process (util.ts `check`) without running
 * any finally block, so they are also signalled on exit rather than left serving.
 */
const live = new Set<ChildProcess>();

/** Sluice with its data directory (embedded registry, artifacts) inside `dir`, removed with it. */
async function startServer(dir: string, threads: number, env: Record<string, string>): Promise<Server> {
  const data = mkdtempSync(path.join(dir, `data-${threads}-`));
  const proc = await startSluiceProcess({ env: { ...env, SLUICE_IO_THREADS: String(threads), SLUICE_DATA_DIR: data } });
  live.add(proc.child);
  return {
    label: `Sluice, ${threads} I/O thread${threads > 1 ? 's' : ''}`,
    threads,
    proc,
    address: { grpc: proc.grpc, http: proc.http.replace(/^http:\/\//, '') },
  };
}

/** Sluice with 1 and with 2 I/O threads, both checked (phase 0), for `fn`; stopped after it. */
async function withPair<T>(dir: string, env: Record<string, string>, what: string, fn: (one: Server, two: Server) => Promise<T>): Promise<T> {
  const servers: Server[] = [];
  try {
    for (const n of [1, 2]) servers.push(await startServer(dir, n, env));
    console.log(`
Correctness, servers for ${what} (demo-logistic over fresh connections, against the formula):`);
    for (const s of servers) for (const p of ['grpc', 'http'] as const) await checkServer(s, p);
    return await fn(servers[0]!, servers[1]!);
  } finally {
    await Promise.all(servers.map(stopServer));
  }
}

async function stopServer(s: Server): Promise<void> {
  await s.proc.stop();
  live.delete(s.proc.child);
}

async function scrape(s: Server): Promise<Scrape> {
  const res = await fetch(`${s.proc.http}/metrics`);
  check(res.ok, `${s.label}: /metrics answered ${res.status}`);
  const text = await res.text();
  let perThread: Map<string, number> | null = null;
  let errors = 0;
  const refused = refusalsByReason(text);
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const [, name, labels = '', value] = m;
    if (name === 'sluice_errors_total') errors += Number(value);
    if (name === 'sluice_io_thread_requests_total') {
      // Summed over any other labels the engine may add (protocol, route).
      const thread = /(?:^|,)thread="([^"]*)"/.exec(labels)?.[1];
      if (thread === undefined) continue;
      perThread ??= new Map();
      perThread.set(thread, (perThread.get(thread) ?? 0) + Number(value));
    }
  }
  return { perThread, errors, refused };
}

/** Requests each thread served between two reads (null when the counters are not there). */
function served(before: Scrape, after: Scrape): Map<string, number> | null {
  if (!after.perThread) return null;
  const out = new Map<string, number>();
  for (const [t, n] of after.perThread) out.set(t, n - (before.perThread?.get(t) ?? 0));
  return out;
}

function describeShares(before: Scrape, after: Scrape): string {
  const d = served(before, after);
  if (!d) return 'per-thread counters not available';
  const total = [...d.values()].reduce((a, b) => a + b, 0);
  const threads = [...d.keys()].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  return 'per-thread shares: ' + threads.map((t) => `thread ${t} ${total > 0 ? ((d.get(t)! / total) * 100).toFixed(0) : '-'}% (${d.get(t)})`).join(', ');
}

/**
 * Checked answers over fresh connections of `protocol`, 16 at a time; with per-thread counters,
 * until every one of the server's threads has answered some (64 connections at most).
 */
async function checkServer(s: Server, protocol: Protocol): Promise<void> {
  const before = await scrape(s);
  let scrapes = 1;
  let d: Map<string, number> | null = null;
  for (let answers = 16; answers <= 64; answers += 16) {
    for (let k = 0; k < 16; k++) await checkFreshAnswer(protocol, s.address[protocol], s.label);
    const now = await scrape(s);
    scrapes++;
    d = served(before, now);
    if (!d) {
      console.log(`  ${s.label}, ${protocol}: ${answers} answers checked; per-thread counters not available`);
      return;
    }
    // A thread's count may include these /metrics reads (each thread's requests, whatever
    // the route): a thread has served the checks only with more requests than that.
    if ([...d.values()].filter((n) => n > scrapes).length >= s.threads) {
      console.log(`  ${s.label}, ${protocol}: ${answers} answers checked over fresh connections; ${describeShares(before, now)}`);
      return;
    }
  }
  check(false, `${s.label}: 64 fresh ${protocol} connections reached only ${[...d!].filter(([, n]) => n > scrapes).map(([t]) => `thread ${t}`).join(', ') || 'no thread'} of ${s.threads}`);
}

/** Clock ticks (user + system) the process has used; Linux's USER_HZ is 100. NaN elsewhere. */
function cpuTicks(child: ChildProcess): number {
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

interface Measured {
  rate: number;
  /** Server CPU over the run (warm-up included), in cores. */
  cores: number;
  /** Errors the server returned during the run (sluice_errors_total). */
  errors: number;
}

async function capacityRun(s: Server, protocol: Protocol, bodyFile: string, seconds: number): Promise<Measured> {
  const before = await scrape(s);
  const ticks = cpuTicks(s.proc.child);
  const t0 = performance.now();
  const rate = await h2loadRate(protocol, s.address[protocol], bodyFile, seconds, s.label);
  const cores = (cpuTicks(s.proc.child) - ticks) / 100 / ((performance.now() - t0) / 1000);
  const after = await scrape(s);
  return { rate, cores, errors: after.errors - before.errors };
}

interface Capacity {
  rates: Record<1 | 2, number[]>;
  ratios: number[];
  ratio: number;
  errors: number;
  shares: string;
  /** Whether /metrics showed both threads serving: without it a ratio above 1 may be noise. */
  bothServed: boolean | null;
}

async function capacity(one: Server, two: Server, protocol: Protocol, bodyFile: string, rounds: number, seconds: number): Promise<Capacity> {
  const rates: Record<1 | 2, number[]> = { 1: [], 2: [] };
  const ratios: number[] = [];
  let errors = 0;
  const before = await scrape(two);
  console.log(`\n${protocol === 'grpc' ? 'gRPC ModelInfer, h2load 16 connections x 4 streams' : 'HTTP single-row JSON, h2load --h1 32 connections'}, ${rounds} interleaved round(s) of ${seconds} s (after 1 s warm-up):`);
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [one, two] : [two, one];
    const got = new Map<Server, Measured>();
    for (const s of order) got.set(s, await capacityRun(s, protocol, bodyFile, seconds));
    const a = got.get(one)!;
    const b = got.get(two)!;
    rates[1].push(a.rate);
    rates[2].push(b.rate);
    ratios.push(b.rate / a.rate);
    errors += a.errors + b.errors;
    const line = (m: Measured) => `${fmt(m.rate)}/s (server CPU ${m.cores.toFixed(2)} cores${m.errors ? `, ${m.errors} SERVER ERRORS` : ''})`;
    console.log(`  round ${r + 1} (${order[0]!.threads} first): 1 thread ${line(a)}, 2 threads ${line(b)}: 2/1 = ${(b.rate / a.rate).toFixed(2)}`);
  }
  const after = await scrape(two);
  const shares = describeShares(before, after);
  const d = served(before, after);
  const bothServed = d && [...d.values()].filter((n) => n > 0).length >= two.threads;
  const ratio = median(ratios);
  console.log(`  2/1, median of rounds: ${ratio.toFixed(2)} (target >= ${TARGET[protocol]}x); 2 threads: ${shares}`);
  return { rates, ratios, ratio, errors, shares, bothServed };
}

interface OpenLoopRun {
  label: string;
  report: GoLoadReport;
}

/** One open-loop run; then a checked answer, which also waits out an overloaded server's backlog. */
async function openLoop(bin: string, label: string, address: string, requestFile: string, rate: number, durationS: number, sluice?: Server): Promise<OpenLoopRun> {
  const before = sluice ? await scrape(sluice) : undefined;
  const meter = startHiccupMeter();
  const report = await goLoad(bin, address, requestFile, rate, durationS, OPEN_LOOP_CONNECTIONS);
  const hiccups = await meter.stop();
  await checkFreshAnswer('grpc', address, label);
  let serverSide = '';
  if (sluice) {
    const after = await scrape(sluice);
    const refusals = [...after.refused].map(([reason, n]) => `${reason} ${n - (before!.refused.get(reason) ?? 0)}`).join(', ');
    serverSide = `\n  refused by admission control: ${refusals || 'no counters'}\n  ${describeShares(before!, after)}`;
  }
  console.log(`\n${label}: ${rate} ModelInfer calls/s offered for ${durationS} s (open loop, Go generator, ${OPEN_LOOP_CONNECTIONS} connections):\n${describeGoLoad(report)}${serverSide}\n  ${describeHiccups(hiccups)}`);
  return { label, report };
}

const verdict = (ok: boolean) => (ok ? 'met' : 'NOT MET');
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

export async function runThreads(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const figures: Record<string, number> = {};
  if (!(await hasH2load())) {
    console.log('h2load not installed (apt-get install nghttp2-client): threads skipped');
    return figures;
  }
  const quick = opts.quick ?? process.argv.includes('--quick');
  const rounds = quick ? 2 : 3;
  const seconds = quick ? 2 : 5;
  const rate = Number(process.env.SLUICE_BENCH_GRPC_GO_RATE ?? 10_000);
  const durationS = quick ? 5 : 30;
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-threads-'));
  let bare: { child: ChildProcess; address: string } | undefined;
  const onExit = () => {
    for (const c of live) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  try {
    console.log(`Load average at start: ${load()} (the machine is shared: compare figures within this run only)`);
    bare = await startBare('bare-grpc');
    live.add(bare.child);
    await checkFreshAnswer('grpc', bare.address, 'bare grpc-js');
    console.log('bare grpc-js (1 thread, for scale): answer checked');
    let bodies: Record<Protocol, string> | undefined;

    // 1. Capacity, interleaved, with admission control off: a saturating closed loop makes
    // Sluice refuse calls (OVERLOADED: 36% of them in one 1-thread trial), which h2load counts
    // as answered gRPC calls. What is timed here is what each configuration can answer.
    const cap = await withPair(dir, { SLUICE_ADMISSION: '0' }, 'capacity (SLUICE_ADMISSION=0)', async (one, two) => {
      bodies = writeH2loadBodies(path.join(dir, 'body'), await singleRequest(one.address.grpc));
      return {
        grpc: await capacity(one, two, 'grpc', bodies.grpc, rounds, seconds),
        http: await capacity(one, two, 'http', bodies.http, rounds, seconds),
      };
    });

    // 2. Open loop, with the Go generator, against servers as configured by default.
    const bin = await buildGoLoad(dir);
    const runs: OpenLoopRun[] = [];
    if (bin) {
      const requestFile = path.join(dir, 'model-infer-request.bin');
      await withPair(dir, {}, 'the open loop (default configuration)', async (one, two) => {
        writeFileSync(requestFile, await singleRequest(two.address.grpc));
        // Untimed warm-up, so no run pays for the JIT: 2 s of h2load against each server.
        for (const [address, label] of [[two.address.grpc, two.label], [bare!.address, 'bare grpc-js'], [one.address.grpc, one.label]] as const) {
          await h2loadRate('grpc', address, bodies!.grpc, 2, label);
        }
        runs.push(await openLoop(bin, two.label, two.address.grpc, requestFile, rate, durationS, two));
        runs.push(await openLoop(bin, 'bare grpc-js, 1 thread', bare!.address, requestFile, rate, durationS));
        runs.push(await openLoop(bin, one.label, one.address.grpc, requestFile, rate, durationS, one));
      });
    }

    // Summary: every figure beside its same-run baseline.
    const rows: Array<Array<string | number>> = [];
    for (const p of ['grpc', 'http'] as const) {
      const c = cap[p];
      const result = c.errors ? `INVALID (${c.errors} server errors)`
        : c.bothServed === null ? `${verdict(c.ratio >= TARGET[p])} (2 threads unverified: no per-thread counters)`
        : c.bothServed ? verdict(c.ratio >= TARGET[p]) : 'INVALID (one thread served everything)';
      rows.push([
        p === 'grpc' ? 'gRPC unary capacity, h2load 16 conn x 4 streams, calls/s' : 'HTTP single-row JSON capacity, h2load --h1 32 conn, req/s',
        '-', median(c.rates[1]), median(c.rates[2]), `${c.ratio.toFixed(2)} (rounds ${c.ratios.map((q) => q.toFixed(2)).join(' ')})`, `>= ${TARGET[p]}x`, result,
      ]);
      figures[`${p}Rate1`] = median(c.rates[1]);
      figures[`${p}Rate2`] = median(c.rates[2]);
      figures[`${p}Ratio`] = c.ratio;
    }
    if (runs.length) {
      const [s2, b, s1] = runs.map((r) => r.report) as [GoLoadReport, GoLoadReport, GoLoadReport];
      const pass = s2.errorCount === 0 && s2.latencyMs.p99 < OPEN_LOOP_P99_MS;
      const ol = `open loop ${fmt(rate)}/s, ${durationS} s, Go x${OPEN_LOOP_CONNECTIONS}:`;
      rows.push([`${ol} achieved calls/s`, b.achievedRate, s1.achievedRate, s2.achievedRate, (s2.achievedRate / s1.achievedRate).toFixed(2), '', '']);
      rows.push([`${ol} errors`, String(b.errorCount), String(s1.errorCount), String(s2.errorCount), '', '0', s2.errorCount === 0 ? 'PASS' : 'FAIL']);
      rows.push([`${ol} p50 ms`, b.latencyMs.p50, s1.latencyMs.p50, s2.latencyMs.p50, '', '', '']);
      rows.push([`${ol} p99 ms`, b.latencyMs.p99, s1.latencyMs.p99, s2.latencyMs.p99, '', `< ${OPEN_LOOP_P99_MS}`, s2.latencyMs.p99 < OPEN_LOOP_P99_MS ? 'PASS' : 'FAIL']);
      rows.push([`${ol} p99.9 ms`, b.latencyMs.p999, s1.latencyMs.p999, s2.latencyMs.p999, '', '', '']);
      rows.push([`${ol} generator send lag p99 ms`, b.sendLagMs.p99, s1.sendLagMs.p99, s2.sendLagMs.p99, '', '', '']);
      figures.openLoopRate = rate;
      figures.openLoopAchieved2 = s2.achievedRate;
      figures.openLoopErrors2 = s2.errorCount;
      figures.openLoopP99Ms2 = s2.latencyMs.p99;
      figures.openLoopP99Ms1 = s1.latencyMs.p99;
      figures.openLoopP99MsBare = b.latencyMs.p99;
      figures.openLoopPass = pass ? 1 : 0;
      console.log(`\nOpen loop, Sluice with 2 I/O threads: ${s2.errorCount} errors, p99 ${s2.latencyMs.p99.toFixed(2)} ms (target: 0 errors, p99 < ${OPEN_LOOP_P99_MS} ms): ${pass ? 'PASS' : 'FAIL'}`);
    }
    table(`Issue #11, same run: Sluice with 1 vs 2 I/O threads (capacity: admission control off, median of ${rounds} interleaved rounds of ${seconds} s)`,
      ['figure', 'bare grpc-js, 1 thread', 'Sluice, 1 I/O thread', 'Sluice, 2 I/O threads', '2/1', 'target', 'result'], rows);
    console.log(`  2 threads, capacity rounds: gRPC ${cap.grpc.shares}; HTTP ${cap.http.shares}`);
    console.log(`Load average at end: ${load()}. Generator and servers share this machine's cores.`);
  } finally {
    bare?.child.kill('SIGTERM');
    if (bare) live.delete(bare.child);
    process.off('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}
