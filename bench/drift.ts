/**
 * `npm run bench -- drift [--quick]`: what drift sampling (src/analyze/drift-sampler.ts) costs
 * serving, at its default rate (SLUICE_DRIFT_SAMPLE_RATE 0.01) against sampling off (0), in the
 * same run, interleaved:
 *  1. in process: single-row inline demo-logistic requests through Engine.inferNow, one engine
 *     sampling and one not, timed in alternating rounds (bench/util.ts compare): requests/s;
 *     and the sampler's own costs (a draw, a sampled answer), which bound what it adds to a
 *     request more finely than the two engines' ratio can on a shared machine;
 *  2. whole servers: two Sluice processes (`npm start`, demo-logistic only, one I/O thread, no
 *     admission control), each driven in turn (the order alternates every round) by the open-loop
 *     harness at a fixed rate of single-row JSON requests; the server's CPU per answered request
 *     from /proc/<pid>/stat. Throughput at saturation goes as the inverse of CPU per request, so
 *     the ratio of the medians (off / sampling) is the throughput ratio; answers, errors and p99
 *     are printed beside it.
 * Checked first: both engines and both servers answer demo-logistic's formula; afterwards the
 * sampling server's drift API reports the sampled requests (about 1 % of those it answered) and
 * the other server reports none.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { startSluiceProcess, type SluiceProcess } from '../loadtest/sluice-process.js';
import { runOpenLoop } from '../loadtest/open-loop.js';
import { summarise } from '../loadtest/report.js';
import { buildTarget } from '../loadtest/target.js';
import { Engine } from '../src/service/engine.js';
import type { InferRequest, InferResponse } from '../src/service/types.js';
import { check, compare, median, table, timeNs } from './util.js';
import { DriftSampler } from '../src/analyze/drift-sampler.js';
import type { Manifest } from '../src/model/manifest.js';
import { checkDemoLogisticOverHttp, demoAnswer, features } from './engine-util.js';

const DEFAULT_RATE = '0.01';

/** utime + stime of a process, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function firstOutput(res: InferResponse): number {
  return Number(res.outputs[0]!.data[0]);
}

async function inProcess(quick: boolean): Promise<{ on: number; off: number; ratio: number }> {
  const opts = { startupModels: ['demo-logistic'], workers: 0, admission: false };
  const sampling = await Engine.start({ ...opts, driftSampleRate: Number(DEFAULT_RATE) });
  const plain = await Engine.start({ ...opts, driftSampleRate: 0 });
  try {
    const x = features(1, 17);
    const req: InferRequest = { model: 'demo-logistic', inputs: [x] };
    const expected = demoAnswer(x.data as Float32Array);
    for (const e of [sampling, plain]) {
      const res = await e.inferNow(req);
      check(Math.abs(firstOutput(res) - expected) < 1e-6, `in-process answer ${firstOutput(res)}, expected ${expected}`);
    }
    const r = compare(() => void plain.inferNow(req), () => void sampling.inferNow(req), quick ? 5 : 11, 200);
    await sampling.collectDrift();
    const report = sampling.drift.report('demo-logistic').versions[0];
    check(report !== undefined && report.sampled_requests > 0, 'the sampling engine sampled requests');
    check(plain.drift.report('demo-logistic').versions.length === 0, 'the engine with sampling off sampled nothing');
    return { off: 1e9 / r.a, on: 1e9 / r.b, ratio: r.a / r.b };
  } finally {
    await sampling.close();
    await plain.close();
  }
}

/**
 * The sampler's own costs, which the request-path ratios are too noisy to resolve on a shared
 * machine: ns per draw (every request) and per sampled answer (a 100-feature row copied).
 */
function samplerCosts(): { drawNs: number; answerNs: number; perRequestNs: number } {
  const sampler = new DriftSampler(Number(DEFAULT_RATE));
  const manifest = { name: 'demo-logistic', version: '1', signature: { inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }], outputs: [] } } as unknown as Manifest;
  const inputs = [features(1, 29)];
  const out = Float32Array.of(0.5);
  let n = 0;
  const drawNs = timeNs(() => {
    if (sampler.draw()) n++;
  }, 300);
  check(n > 0, 'the sampler drew');
  let i = 0;
  const answerNs = timeNs(() => {
    sampler.answer(manifest, inputs, 1, out);
    // Taken as the engine's collection would, so the buffer never fills (the copy is counted too).
    if ((++i & 1023) === 0) sampler.take();
  }, 300);
  return { drawNs, answerNs, perRequestNs: drawNs + Number(DEFAULT_RATE) * answerNs };
}


async function sampledBy(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/v1/admin/models/demo-logistic/drift`, { headers: { authorization: `Bearer ${key}` } });
  check(res.status === 200, `drift API answered ${res.status}`);
  const body = (await res.json()) as { versions: Array<{ sampled_requests: number }> };
  return body.versions.reduce((n, v) => n + v.sampled_requests, 0);
}

export async function runDrift(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const engine = await inProcess(quick);
  table(`in process: inline demo-logistic, 1 row/request, Engine.inferNow (interleaved rounds, ${quick ? 5 : 11})`, ['drift sampling', 'requests/s'], [
    ['off (rate 0)', engine.off], [`on (rate ${DEFAULT_RATE})`, engine.on], ['ratio on / off', engine.ratio.toFixed(3)],
  ]);

  const costs = samplerCosts();
  table('the sampler alone (ns)', ['what', 'ns'], [
    ['draw, every request', costs.drawNs], ['a sampled answer (100 features copied)', costs.answerNs],
    [`per request at rate ${DEFAULT_RATE}: draw + rate x answer`, costs.perRequestNs],
    ['the same as a share of an inline request', `${(100 * costs.perRequestNs / (1e9 / engine.off)).toFixed(2)} %`],
  ]);

  const key = `sk_bench_${randomBytes(16).toString('hex')}`;
  const env = (rate: string) => ({ SLUICE_MODELS: 'demo-logistic', SLUICE_IO_THREADS: '1', SLUICE_ADMISSION: 'false', SLUICE_ADMIN_KEY: key, SLUICE_DRIFT_SAMPLE_RATE: rate, SLUICE_LOG_LEVEL: 'info' });
  const servers: Record<'on' | 'off', SluiceProcess> = { on: await startSluiceProcess({ env: env(DEFAULT_RATE) }), off: await startSluiceProcess({ env: env('0') }) };
  const rate = 4_000;
  const seconds = quick ? 3 : 6;
  const rounds = quick ? 3 : 6;
  const cpu: Record<'on' | 'off', number[]> = { on: [], off: [] };
  const p99: Record<'on' | 'off', number[]> = { on: [], off: [] };
  let answeredOn = 0;
  const ratios: number[] = [];
  try {
    for (const s of Object.values(servers)) await checkDemoLogisticOverHttp(s.http);
    const targets = { on: await buildTarget({ url: servers.on.http, model: 'demo-logistic', batch: 1, binary: false }), off: await buildTarget({ url: servers.off.http, model: 'demo-logistic', batch: 1, binary: false }) };
    // Warm-up, not recorded: both servers compile their hot paths under the same load first.
    for (const who of ['on', 'off'] as const) await runOpenLoop(targets[who], { rate, durationS: quick ? 2 : 4, connections: 16 });
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const);
      const perRequest: Partial<Record<'on' | 'off', number>> = {};
      for (const who of order) {
        const pid = servers[who].child.pid!;
        const t0 = cpuTicks(pid);
        const s = summarise([await runOpenLoop(targets[who], { rate, durationS: seconds, connections: 16 })]);
        const ticks = cpuTicks(pid) - t0;
        check(s.errorCount === 0, `${who}: ${s.errorCount} errors`);
        if (who === 'on') answeredOn += s.answered;
        // Clock ticks are 10 ms: CPU microseconds per answered request.
        perRequest[who] = (ticks * 10_000) / s.answered;
        cpu[who].push(perRequest[who]!);
        p99[who].push(s.latencyMs.p99);
      }
      ratios.push(perRequest.off! / perRequest.on!);
    }
    const sampled = await sampledBy(servers.on.http, key);
    check(sampled > 0, 'the sampling server sampled requests');
    check(await sampledBy(servers.off.http, key) === 0, 'the server with sampling off sampled nothing');
    table(`whole server (one I/O thread), demo-logistic JSON at ${rate} req/s, ${rounds} interleaved rounds of ${seconds} s`, ['drift sampling', 'server CPU us/request (median)', 'p99 ms (median)'], [
      ['off (rate 0)', median(cpu.off), median(p99.off)],
      [`on (rate ${DEFAULT_RATE})`, median(cpu.on), median(p99.on)],
    ]);
    console.log(`  per-round ratios: ${ratios.map((r) => r.toFixed(3)).join(', ')}`);
    console.log(`  throughput ratio on / off (CPU per request off / on, median of per-round ratios): ${median(ratios).toFixed(3)} (target >= 0.95)`);
    console.log(`  sampled by the server: ${sampled} of ${answeredOn} recorded answers plus warm-up (${(100 * sampled / answeredOn).toFixed(2)} %, warm-up included)`);
    return { samplerPerRequestNs: costs.perRequestNs, engineRatio: engine.ratio, engineOnPerS: engine.on, engineOffPerS: engine.off, serverRatio: median(ratios), cpuOnUs: median(cpu.on), cpuOffUs: median(cpu.off) };
  } finally {
    for (const s of Object.values(servers)) {
      await s.stop();
    }
  }
}
