/**
 * Overload shedding (issue #10), side by side in one run, single-row JSON over HTTP with the
 * open-loop harness (loadtest/), for two models: demo-logistic (the issue's figure), and an
 * inline test fixture computing 100 us per request (where a refusal is cheap next to an answer).
 * For each:
 *  1. capacity: the highest rate holding p99 < 10 ms with no errors (--find-max, on the server
 *     without admission control), then baseline runs of the protected server at that rate and
 *     at half of it (the "normal" load);
 *  2. overload: 2x capacity for 10 s, then the normal load for 5 s on the same connections:
 *     goodput (successful answers/s), the accepted requests' p99, the refusals' p99, and how long
 *     after the overload stops the 250 ms windows' p99 is back within the baseline's range with
 *     no refusals; and the server's own refusal counters by admission signal (event loop, turn
 *     budget, in flight), to tell which control law turned the requests away;
 *  3. the same 2x load against a second server with admission control off (SLUICE_ADMISSION=0):
 *     what the shedding is worth.
 * Answers are checked against demo-logistic's formula before anything is timed. Where the load
 * generator was saturated during the overload (it could not send on schedule: the offered load
 * was not 2x), the acceptance lines say "not judged" instead of a verdict.
 * 4. with --also=ENV=V[,ENV=V], the same overload against a third server started with those
 *    settings (say SLUICE_ADMISSION_TURN_BUDGET_MS=10000): an A/B at the same capacity, in one run.
 * `npm run bench -- overload [--quick] [--only=logistic|busy] [--also=ENV=V,...]`.
 */
import * as hdr from 'hdr-histogram-js';
import { findMax, type LoadOptions } from '../loadtest/cli.js';
import { runOpenLoop, windowHistogram, type RunResult } from '../loadtest/open-loop.js';
import { describe, summarise, type Summary } from '../loadtest/report.js';
import { startSluiceProcess, type SluiceProcess } from '../loadtest/sluice-process.js';
import { buildTarget } from '../loadtest/target.js';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { demoAnswer } from './engine-util.js';
import { alsoEnv, check, refusalsByReason } from './util.js';

const WINDOW_MS = 250;

interface Scenario {
  label: string;
  model: string;
  env: Record<string, string>;
  /** Checks one answer of the server at `url` (before anything is timed). */
  check: (url: string) => Promise<void>;
}

function startServer(sc: Scenario, admission: boolean): Promise<SluiceProcess> {
  return startSluiceProcess({ env: { ...sc.env, SLUICE_ADMISSION: admission ? '1' : '0' } });
}

async function post(url: string, model: string, input: string, x: number[]): Promise<number> {
  const res = await fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: input, datatype: 'FP32', shape: [1, x.length], data: x }] }),
  });
  check(res.status === 200, `${model}: infer answered ${res.status}`);
  return ((await res.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data[0]!;
}

/** demo-logistic, single-row JSON: the issue's figure (a refusal costs ~0.4x an answer here). */
const logistic: Scenario = {
  label: 'demo-logistic (inline, ~0.1 us of compute)',
  model: 'demo-logistic',
  env: { SLUICE_MODELS: 'demo-logistic' },
  async check(url) {
    const x = Array.from({ length: 100 }, (_, i) => Math.fround(Math.cos(i)));
    const got = await post(url, 'demo-logistic', 'features', x);
    check(Math.abs(got - demoAnswer(x)) < 1e-6, `demo-logistic answered ${got}, expected ${demoAnswer(x)}`);
  },
};

/**
 * A test fixture that computes for 100 us inline (a small ONNX graph's worth): a refusal costs a
 * few percent of an answer, so this shows the controller where refusing is cheap.
 */
function busyInline(root: string): Scenario {
  return {
    label: 'busy-inline fixture (inline, 100 us of compute)',
    model: 'busy-inline',
    env: { SLUICE_MODELS: 'busy-inline', SLUICE_MODEL_REPOSITORY: root, SLUICE_ALLOW_FIXTURE_MODELS: '1', SLUICE_WORKERS: '1' },
    async check(url) {
      const x = [0.5, 1.25, -2, 3];
      const got = await post(url, 'busy-inline', 'x', x);
      check(Math.abs(got - 2.75) < 1e-6, `busy-inline answered ${got}, expected 2.75 (the row's sum)`);
    },
  };
}

async function busyInlineRepo(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'sluice-overload-'));
  const dir = path.join(root, 'busy-inline', '1');
  await mkdir(dir, { recursive: true });
  const payload = '{}';
  await writeFile(path.join(dir, 'fixture.json'), payload);
  await writeFile(path.join(dir, 'model.json'), JSON.stringify({
    name: 'busy-inline', version: '1', kind: 'fixture', dispatch: 'inline', max_batch_size: 64,
    signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] },
    dynamic_batching: { max_queue_delay_us: 0, max_queue_size: 1024 },
    parameters: { op: 'sum', delay_us: 100 },
    payload: { file: 'fixture.json', sha256: createHash('sha256').update(payload).digest('hex') },
  }));
  return root;
}

/** p99 (ms) of a window's successful answers. */
function windowP99(w: NonNullable<RunResult['windows']>[number]): number {
  return w.ok === 0 ? 0 : hdr.decodeFromCompressedBase64(w.histogram).getValueAtPercentile(99) / 1000;
}

/** The p99 (ms) of the refusals of the windows `ws` together (0 without any). */
function refusedP99(ws: NonNullable<RunResult['windows']>): number {
  const h = windowHistogram();
  for (const w of ws) if (w.refused > 0) h.add(hdr.decodeFromCompressedBase64(w.refusedHistogram));
  return h.totalCount === 0 ? 0 : h.getValueAtPercentile(99) / 1000;
}

/**
 * Seconds from the end of the overload until the windows are back to normal for good: every
 * later window's p99 within `normalMs` and no refusals. Infinity if they never are.
 */
function recoveryS(windows: NonNullable<RunResult['windows']>, overloadS: number, normalMs: number): number {
  const after = windows.filter((w) => w.startS >= overloadS - 1e-9);
  // Drop the last window: the run's tail may be partial.
  const full = after.slice(0, -1);
  let firstGood = full.length;
  for (let i = full.length - 1; i >= 0; i--) {
    const w = full[i]!;
    if (w.refused > 0 || w.errors > 0 || windowP99(w) > normalMs) break;
    firstGood = i;
  }
  if (firstGood >= full.length) return Infinity;
  return full[firstGood]!.startS - overloadS;
}

export async function runOverload(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const root = await busyInlineRepo();
  try {
    const figures: Record<string, number> = {};
    const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
    for (const [key, sc] of [['logistic', logistic], ['busy', busyInline(root)]] as const) {
      if (only !== undefined && only !== key) continue;
      console.log(`\n=== ${sc.label} ===`);
      for (const [k, v] of Object.entries(await runScenario(sc, quick))) figures[`${key}.${k}`] = v;
    }
    return figures;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function runScenario(sc: Scenario, quick: boolean): Promise<Record<string, number>> {
  const also = alsoEnv();
  const overloadS = quick ? 5 : 10;
  const afterS = 5;
  const connections = 16;
  const sluice = await startServer(sc, true);
  const unprotected = await startServer(sc, false);
  const figures: Record<string, number> = {};
  try {
    await sc.check(sluice.http);
    await sc.check(unprotected.http);
    const base: LoadOptions = {
      protocol: 'http', url: sluice.http, model: sc.model, batch: 1, binary: false, rate: 1_000, duration: 5, connections, workers: 1,
      findMax: true, sloMs: 10, stepDuration: quick ? 2 : 4, stepFactor: 1.2, stepRetries: 1, quiet: true,
    };
    const target = await buildTarget(base);
    const targetOff = await buildTarget({ ...base, url: unprotected.http });
    // Warm-up (not recorded): both servers compile their hot path.
    await runOpenLoop(target, { rate: 3_000, durationS: quick ? 2 : 4, connections });
    await runOpenLoop(targetOff, { rate: 3_000, durationS: quick ? 2 : 4, connections });

    // 1. Capacity, and the baselines at it and at half of it. Capacity is searched on the
    //    server without admission control: a step with refusals fails the search, so searching
    //    the protected server would lower the bar its own shedding is then judged against.
    const max = await findMax({ ...base, url: unprotected.http });
    const capacity = max.maxRate;
    check(capacity > 0, 'no rate held the SLO');
    const normal = capacity / 2;
    const atCapacity = summarise([await runOpenLoop(target, { rate: capacity, durationS: quick ? 4 : 8, connections })]);
    const atNormalRun = await runOpenLoop(target, { rate: normal, durationS: quick ? 3 : 5, connections, windowMs: WINDOW_MS });
    const atNormal = summarise([atNormalRun]);
    const normalWindowMax = Math.max(...atNormalRun.windows!.slice(0, -1).map(windowP99));
    console.log(`\nCapacity (highest rate with p99 < 10 ms and no errors, admission control off): ${Math.round(capacity)} req/s`);
    console.log(`At capacity:\n${describe(atCapacity)}`);
    console.log(`At half capacity ("normal"):\n${describe(atNormal)}\n  worst ${WINDOW_MS} ms window p99: ${normalWindowMax.toFixed(2)} ms`);

    // 2. 2x capacity, then the normal load, on the same connections.
    const normalMs = Math.max(normalWindowMax, atNormal.okLatencyMs.p99 * 2);
    const phase = (t: typeof target, server: string, label: string) => overloadPhase(t, server, label, { capacity, normal, overloadS, afterS, connections, normalMs });
    const { run, overload, recovery } = await phase(target, sluice.http, 'admission control on');

    // 3. The same overload with admission control off.
    const off = summarise([await runOpenLoop(targetOff, { rate: 2 * capacity, durationS: overloadS, connections })]);
    console.log(`\nThe same 2x load, admission control off (SLUICE_ADMISSION=0):\n${describe(off)}`);

    figures.capacity = capacity;
    figures.capacityP99Ms = atCapacity.latencyMs.p99;
    figures.goodput = overload.ok / overloadS;
    figures.goodputRatio = figures.goodput / capacity;
    figures.acceptedP99Ms = overload.okP99;
    figures.acceptedP99Ratio = overload.okP99 / atCapacity.latencyMs.p99;
    figures.refusedP99Ms = overload.refusedP99;
    figures.recoveryS = recovery;
    figures.offGoodputRatio = off.goodput / capacity;
    figures.offP50Ms = off.okLatencyMs.p50;
    figures.offP99Ms = off.okLatencyMs.p99;
    console.log(`\nOverload acceptance (figures from this run; capacity ${Math.round(capacity)} req/s, its p99 ${atCapacity.latencyMs.p99.toFixed(2)} ms):`);
    printAcceptance({ run, overload, recovery }, capacity, atCapacity.latencyMs.p99, overloadS);
    console.log(`  without admission control: goodput ${(figures.offGoodputRatio * 100).toFixed(0)}% of capacity, p50 ${off.okLatencyMs.p50.toFixed(1)} ms, p99 ${off.okLatencyMs.p99.toFixed(1)} ms`);
    if (atCapacity.saturated || off.saturated || summarise([run]).saturated) console.log('  note: the load generator was saturated in at least one run (see above)');

    // 4. --also=ENV=V[,ENV=V]: the same overload against a protected server with other settings
    //    (an A/B at the same capacity, right after the first; its acceptance lines alone).
    if (also) {
      const variant = await startSluiceProcess({ env: { ...sc.env, SLUICE_ADMISSION: '1', ...also } });
      try {
        await sc.check(variant.http);
        const targetVariant = await buildTarget({ ...base, url: variant.http });
        await runOpenLoop(targetVariant, { rate: 3_000, durationS: quick ? 2 : 4, connections });
        const label = Object.entries(also).map(([k, v]) => `${k}=${v}`).join(' ');
        const v = await phase(targetVariant, variant.http, `admission control on, ${label}`);
        console.log(`\nVariant ${label} (same capacity ${Math.round(capacity)} req/s and p99 at capacity ${atCapacity.latencyMs.p99.toFixed(2)} ms):`);
        printAcceptance(v, capacity, atCapacity.latencyMs.p99, overloadS);
      } finally {
        await variant.stop();
      }
    }
  } finally {
    await Promise.all([sluice.stop(), unprotected.stop()]);
  }
  return figures;
}

/** The issue's acceptance lines for one overload phase, against the run's capacity and its p99. */
function printAcceptance(p: Pick<Awaited<ReturnType<typeof overloadPhase>>, 'overload' | 'recovery' | 'run'>, capacity: number, capacityP99Ms: number, overloadS: number): void {
  // A saturated generator sent late: the figures are the generator's, and no verdict is the server's.
  const saturated = summarise([p.run]).saturated;
  const verdict = (ok: boolean) => (saturated ? 'not judged (load generator saturated)' : ok ? 'holds' : 'FAILS');
  const { overload, recovery } = p;
  const goodput = overload.ok / overloadS;
  const ratio = overload.okP99 / capacityP99Ms;
  console.log(`  goodput at 2x: ${goodput.toFixed(0)}/s = ${((goodput / capacity) * 100).toFixed(0)}% of capacity (>= 90%): ${verdict(goodput / capacity >= 0.9)}`);
  console.log(`  accepted p99 at 2x: ${overload.okP99.toFixed(2)} ms = ${ratio.toFixed(2)}x the p99 at capacity (< 2x): ${verdict(ratio < 2)}`);
  console.log(`  refusals' p99: ${overload.refusedP99.toFixed(2)} ms (< 5 ms): ${verdict(overload.refusedP99 < 5 && overload.refused > 0)}${overload.refused === 0 ? ' (no refusals)' : ''}`);
  console.log(`  back to normal (every ${WINDOW_MS} ms window's p99 within the baseline's, no refusals) ${Number.isFinite(recovery) ? `${recovery.toFixed(2)} s` : 'never'} after the overload stopped (<= 2 s): ${verdict(recovery <= 2)}`);
}

interface PhaseOptions { capacity: number; normal: number; overloadS: number; afterS: number; connections: number; normalMs: number }

/** 2x capacity for overloadS, then the normal load for afterS on the same connections: printed, and its figures. */
async function overloadPhase(target: Awaited<ReturnType<typeof buildTarget>>, server: string, label: string, o: PhaseOptions) {
  const before = await refusals(server);
  const run = await runOpenLoop(target, {
    rate: 2 * o.capacity, durationS: o.overloadS, connections: o.connections, windowMs: WINDOW_MS,
    phases: [{ rate: 2 * o.capacity, durationS: o.overloadS }, { rate: o.normal, durationS: o.afterS }],
  });
  const overloadWindows = run.windows!.filter((w) => w.startS < o.overloadS);
  const overload = summariseWindows(run, o.overloadS);
  const recovery = recoveryS(run.windows!, o.overloadS, o.normalMs);
  console.log(`\n2x capacity (${Math.round(2 * o.capacity)} req/s) for ${o.overloadS} s, then ${Math.round(o.normal)} req/s for ${o.afterS} s, ${label}:\n${describe(summarise([run]))}`);
  console.log(`  timeline (${WINDOW_MS} ms windows by send time; successful/s, refused/s, successful p99 ms, refusals' p99 ms):`);
  const perS = 1000 / WINDOW_MS;
  const rows = run.windows!.slice(0, -1).map((w) => `${w.startS.toFixed(2)}s ${Math.round(w.ok * perS)}/${Math.round(w.refused * perS)}/${windowP99(w).toFixed(1)}/${w.refused > 0 ? refusedP99([w]).toFixed(1) : '-'}`);
  for (let i = 0; i < rows.length; i += 6) console.log(`    ${rows.slice(i, i + 6).join('  ')}`);
  console.log(`  during the overload: ${overload.ok} successful (${(overload.ok / o.overloadS).toFixed(0)}/s), ${overload.refused} refused, ${overload.errors} errors; ${overloadWindows.length} windows`);
  // Where the refusals' p99 comes from: the onset (the first window, before the hold starts) or the steady state.
  console.log(`  refusals' p99: first window ${refusedP99(overloadWindows.slice(0, 1)).toFixed(2)} ms, the later windows of the overload ${refusedP99(overloadWindows.slice(1)).toFixed(2)} ms`);
  const after = await refusals(server);
  const bySignal = [...after].map(([reason, n]) => `${reason} ${n - (before.get(reason) ?? 0)}`).join(', ');
  console.log(`  refused by signal (the server's counters, whole phase): ${bySignal}`);
  return { run, overload, recovery };
}

/** The server's refusal counters by admission signal. */
async function refusals(server: string): Promise<Map<string, number>> {
  const res = await fetch(`${server}/metrics`);
  check(res.ok, `/metrics answered ${res.status}`);
  return refusalsByReason(await res.text());
}

/** Counts and percentiles of the requests sent during the overload phase only. */
function summariseWindows(run: RunResult, untilS: number): { ok: number; refused: number; errors: number; okP99: number; refusedP99: number } {
  const ok = windowHistogram();
  let n = 0;
  let refused = 0;
  let errors = 0;
  for (const w of run.windows!) {
    if (w.startS >= untilS) continue;
    n += w.ok;
    refused += w.refused;
    errors += w.errors;
    ok.add(hdr.decodeFromCompressedBase64(w.histogram));
  }
  // Refusal latency is not split by phase: refusals only happen under the overload.
  const s: Summary = summarise([run]);
  return { ok: n, refused, errors, okP99: ok.getValueAtPercentile(99) / 1000, refusedP99: s.refusedLatencyMs.p99 };
}
