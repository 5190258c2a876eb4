/**
 * `npm run bench -- dashboard [--quick]`: what the live dashboard costs serving. One Sluice
 * process (`npm start`, the three demo models, default I/O threads, no admission control, drift
 * sampling at its default rate, a dashboard interval of 1 s), driven by the open-loop harness at
 * a fixed rate of single-row demo-logistic JSON requests, in rounds that alternate (the order
 * flips every round) between the dashboard closed (no viewer: nothing is built) and open with
 * VIEWERS live streams reading every snapshot (each build: every version's window merged over the
 * I/O threads, drift, bandit arms, routes, deployments, experiments and alerts from the registry).
 *
 * Figure: the server's CPU per answered request (from /proc/<pid>/stat, every thread of the
 * process, the embedded database's included). Throughput at saturation goes as the inverse of
 * CPU per request, so closed / open is the throughput ratio: over all rounds (each state's CPU
 * summed over its answers summed), and per round (its median printed beside, with each round's,
 * since a machine shared with other work moves single rounds by 10-20 %). The dashboard's cost is per second,
 * not per request: at a rate below saturation it weighs more per request than it would at
 * saturation, so the ratio at this rate is a lower bound of the saturated one.
 *
 * Beside it, the dashboard's own cost, measured without traffic (the idle server's CPU per
 * second with the viewers and without, interleaved): a figure the shared machine's noise moves
 * far less than the ratio under load.
 *
 * Checked first: the answer is demo-logistic's formula, the page is served, a stream gives
 * snapshots listing the demo models with the traffic in demo-logistic's window; and in every open
 * round, every viewer received a snapshot about every second.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { startSluiceProcess } from '../loadtest/sluice-process.js';
import { runOpenLoop } from '../loadtest/open-loop.js';
import { summarise } from '../loadtest/report.js';
import { buildTarget } from '../loadtest/target.js';
import { check, median, table } from './util.js';
import { checkDemoLogisticOverHttp } from './engine-util.js';

const VIEWERS = 4;
const INTERVAL_MS = 1000;

/** utime + stime of a process, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A dashboard viewer: the event stream read as it comes, snapshots counted (and the last kept). */
async function viewer(url: string, key: string): Promise<{ snapshots: () => number; last: () => Record<string, unknown> | undefined; close: () => void }> {
  const abort = new AbortController();
  const res = await fetch(`${url}/dashboard/events`, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
  check(res.status === 200, `the event stream answered ${res.status}`);
  let n = 0;
  let last: Record<string, unknown> | undefined;
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body!) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          if (block.startsWith('data: ')) {
            last = JSON.parse(block.slice(6)) as Record<string, unknown>;
            n++;
          }
        }
      }
    } catch {
      // closed by the bench
    }
  })();
  return { snapshots: () => n, last: () => last, close: () => abort.abort() };
}


export async function runDashboard(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const key = `sk_bench_${randomBytes(16).toString('hex')}`;
  const server = await startSluiceProcess({ env: { SLUICE_ADMISSION: 'false', SLUICE_ADMIN_KEY: key, SLUICE_DASHBOARD_INTERVAL_MS: String(INTERVAL_MS), SLUICE_LOG_LEVEL: 'info' } });
  const pid = server.child.pid!;
  // The rate bench/http.ts holds its p99 at: the nearer saturation, the nearer the ratio is to
  // the saturated one (the dashboard's cost is per second, not per request).
  const rate = 10_000;
  const seconds = quick ? 3 : 5;
  const rounds = quick ? 4 : 12;
  const cpu: Record<'open' | 'closed', number[]> = { open: [], closed: [] };
  const p99: Record<'open' | 'closed', number[]> = { open: [], closed: [] };
  const ratios: number[] = [];
  const total = { open: { ticks: 0, answered: 0 }, closed: { ticks: 0, answered: 0 } };
  let received = 0;
  try {
    await checkDemoLogisticOverHttp(server.http);
    const page = await fetch(`${server.http}/dashboard`);
    check(page.status === 200 && (await page.text()).includes('/dashboard/assets/app.js'), 'the dashboard page is served');
    const target = await buildTarget({ url: server.http, model: 'demo-logistic', batch: 1, binary: false });
    // Warm-up, not recorded, with the dashboard open for part of it: both paths compile first.
    const warm = await viewer(server.http, key);
    await runOpenLoop(target, { rate, durationS: quick ? 2 : 4, connections: 16 });
    const snap = warm.last();
    warm.close();
    const models = (snap?.models ?? []) as Array<{ model: string; versions: Array<{ window: { requests: number } | null }> }>;
    check(['demo-bandit', 'demo-logistic', 'demo-onnx'].every((m) => models.some((x) => x.model === m)), `a snapshot lists the demo models (got ${models.map((m) => m.model).join(', ')})`);
    check((models.find((m) => m.model === 'demo-logistic')?.versions[0]?.window?.requests ?? 0) > 0, 'the snapshot has the traffic in demo-logistic\'s window');
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['open', 'closed'] as const) : (['closed', 'open'] as const);
      const perRequest: Partial<Record<'open' | 'closed', number>> = {};
      for (const state of order) {
        const viewers = state === 'open' ? await Promise.all(Array.from({ length: VIEWERS }, () => viewer(server.http, key))) : [];
        const t0 = cpuTicks(pid);
        const s = summarise([await runOpenLoop(target, { rate, durationS: seconds, connections: 16 })]);
        const ticks = cpuTicks(pid) - t0;
        for (const v of viewers) {
          // A snapshot at once, then one per interval: about one a second.
          check(v.snapshots() >= seconds - 1, `an open round's viewer got ${v.snapshots()} snapshots in ${seconds} s`);
          received += v.snapshots();
          v.close();
        }
        check(s.errorCount === 0, `${state}: ${s.errorCount} errors`);
        // Clock ticks are 10 ms: CPU microseconds per answered request.
        perRequest[state] = (ticks * 10_000) / s.answered;
        total[state].ticks += ticks;
        total[state].answered += s.answered;
        cpu[state].push(perRequest[state]!);
        p99[state].push(s.latencyMs.p99);
      }
      ratios.push(perRequest.closed! / perRequest.open!);
    }
    table(`whole server, demo-logistic JSON at ${rate} req/s, ${rounds} interleaved rounds of ${seconds} s; open: ${VIEWERS} viewers, a snapshot every ${INTERVAL_MS} ms`, ['dashboard', 'server CPU us/request (median)', 'p99 ms (median)'], [
      ['closed (no viewer)', median(cpu.closed), median(p99.closed)],
      [`open (${VIEWERS} viewers)`, median(cpu.open), median(p99.open)],
    ]);
    // The dashboard's own cost, apart from serving: the idle server's CPU per second with the
    // viewers and without, interleaved (at saturation it takes this from serving, no more).
    const idle: Record<'open' | 'closed', number[]> = { open: [], closed: [] };
    for (let r = 0; r < (quick ? 2 : 4); r++) {
      for (const state of r % 2 === 0 ? (['open', 'closed'] as const) : (['closed', 'open'] as const)) {
        const viewers = state === 'open' ? await Promise.all(Array.from({ length: VIEWERS }, () => viewer(server.http, key))) : [];
        const t0 = cpuTicks(pid);
        await new Promise((res) => setTimeout(res, seconds * 1000));
        idle[state].push(((cpuTicks(pid) - t0) * 10) / seconds);
        for (const v of viewers) v.close();
      }
    }
    const dashboardMsPerS = median(idle.open) - median(idle.closed);
    table(`idle server, ${seconds} s rounds`, ['dashboard', 'server CPU ms per second (median)'], [
      ['closed (no viewer)', median(idle.closed)], [`open (${VIEWERS} viewers)`, median(idle.open)],
      ['the dashboard\'s own cost', dashboardMsPerS],
    ]);
    const overall = (total.closed.ticks / total.closed.answered) / (total.open.ticks / total.open.answered);
    console.log(`  per-round ratios: ${ratios.map((x) => x.toFixed(3)).join(', ')} (median ${median(ratios).toFixed(3)})`);
    console.log(`  snapshots received by the viewers: ${received}`);
    console.log(`  throughput ratio open / closed (CPU per request closed / open, all rounds): ${overall.toFixed(3)} (target >= 0.95)`);
    return { ratio: overall, medianRoundRatio: median(ratios), cpuOpenUs: median(cpu.open), cpuClosedUs: median(cpu.closed), dashboardMsPerS };
  } finally {
    await server.stop();
  }
}
