/**
 * Overload shedding (issue #10), side by side in one run, demo-logistic single-row JSON over HTTP
 * with the open-loop harness (loadtest/):
 *  1. capacity: the highest rate holding p99 < 10 ms with no errors and no refusals (--find-max),
 *     then a baseline run at that rate and at half of it (the "normal" load);
 *  2. overload: 2x capacity for 10 s, then the normal load for 5 s on the same connections:
 *     goodput (successful answers/s), the accepted requests' p99, the refusals' p99, and how long
 *     after the overload stops the 250 ms windows' p99 is back within the baseline's range with
 *     no refusals;
 *  3. the same 2x load against a second server with admission control off (SLUICE_ADMISSION=0):
 *     what the shedding is worth.
 * Answers are checked against demo-logistic's formula before anything is timed.
 * `npm run bench -- overload [--quick]`.
 */
import * as hdr from 'hdr-histogram-js';
import { findMax, type LoadOptions } from '../loadtest/cli.js';
import { runOpenLoop, type RunResult } from '../loadtest/open-loop.js';
import { describe, summarise, type Summary } from '../loadtest/report.js';
import { startSluiceProcess, type SluiceProcess } from '../loadtest/sluice-process.js';
import { buildTarget } from '../loadtest/target.js';
import { demoAnswer } from './engine-util.js';
import { check } from './util.js';

const WINDOW_MS = 250;

function startServer(admission: boolean): Promise<SluiceProcess> {
  return startSluiceProcess({ env: { SLUICE_MODELS: 'demo-logistic', SLUICE_ADMISSION: admission ? '1' : '0' } });
}

async function checkAnswer(url: string): Promise<void> {
  const x = Array.from({ length: 100 }, (_, i) => Math.fround(Math.cos(i)));
  const res = await fetch(`${url}/v2/models/demo-logistic/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: x }] }),
  });
  check(res.status === 200, `infer answered ${res.status}`);
  const got = ((await res.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data[0]!;
  check(Math.abs(got - demoAnswer(x)) < 1e-6, `answered ${got}, expected ${demoAnswer(x)}`);
}

/** p99 (ms) of a window's successful answers. */
function windowP99(w: NonNullable<RunResult['windows']>[number]): number {
  return w.ok === 0 ? 0 : hdr.decodeFromCompressedBase64(w.histogram).getValueAtPercentile(99) / 1000;
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
  const overloadS = quick ? 5 : 10;
  const afterS = 5;
  const connections = 16;
  const sluice = await startServer(true);
  const unprotected = await startServer(false);
  const figures: Record<string, number> = {};
  try {
    await checkAnswer(sluice.http);
    await checkAnswer(unprotected.http);
    const base: LoadOptions = {
      protocol: 'http', url: sluice.http, model: 'demo-logistic', batch: 1, binary: false, rate: 5_000, duration: 5, connections, workers: 1,
      findMax: true, sloMs: 10, stepDuration: quick ? 2 : 4, stepFactor: 1.2, stepRetries: 1, quiet: true,
    };
    const target = await buildTarget(base);
    const targetOff = await buildTarget({ ...base, url: unprotected.http });
    // Warm-up (not recorded): both servers compile their hot path.
    await runOpenLoop(target, { rate: 10_000, durationS: quick ? 2 : 4, connections });
    await runOpenLoop(targetOff, { rate: 10_000, durationS: quick ? 2 : 4, connections });

    // 1. Capacity, and the baselines at it and at half of it.
    const max = await findMax(base);
    const capacity = max.maxRate;
    check(capacity > 0, 'no rate held the SLO');
    const normal = capacity / 2;
    const atCapacity = summarise([await runOpenLoop(target, { rate: capacity, durationS: quick ? 4 : 8, connections })]);
    const atNormalRun = await runOpenLoop(target, { rate: normal, durationS: quick ? 3 : 5, connections, windowMs: WINDOW_MS });
    const atNormal = summarise([atNormalRun]);
    const normalWindowMax = Math.max(...atNormalRun.windows!.slice(0, -1).map(windowP99));
    console.log(`\nCapacity (highest rate with p99 < 10 ms, no errors or refusals): ${Math.round(capacity)} req/s`);
    console.log(`At capacity:\n${describe(atCapacity)}`);
    console.log(`At half capacity ("normal"):\n${describe(atNormal)}\n  worst ${WINDOW_MS} ms window p99: ${normalWindowMax.toFixed(2)} ms`);

    // 2. 2x capacity, then the normal load, on the same connections.
    const run = await runOpenLoop(target, {
      rate: 2 * capacity, durationS: overloadS, connections, windowMs: WINDOW_MS,
      phases: [{ rate: 2 * capacity, durationS: overloadS }, { rate: normal, durationS: afterS }],
    });
    const overloadWindows = run.windows!.filter((w) => w.startS < overloadS);
    const overload = summariseWindows(run, overloadS);
    const recovery = recoveryS(run.windows!, overloadS, Math.max(normalWindowMax, atNormal.okLatencyMs.p99 * 2));
    console.log(`\n2x capacity (${Math.round(2 * capacity)} req/s) for ${overloadS} s, then ${Math.round(normal)} req/s for ${afterS} s, admission control on:\n${describe(summarise([run]))}`);
    console.log(`  timeline (${WINDOW_MS} ms windows by send time; successful/s, refused/s, successful p99 ms):`);
    const perS = 1000 / WINDOW_MS;
    const rows = run.windows!.slice(0, -1).map((w) => `${w.startS.toFixed(2)}s ${Math.round(w.ok * perS)}/${Math.round(w.refused * perS)}/${windowP99(w).toFixed(1)}`);
    for (let i = 0; i < rows.length; i += 6) console.log(`    ${rows.slice(i, i + 6).join('  ')}`);
    console.log(`  during the overload: ${overload.ok} successful (${(overload.ok / overloadS).toFixed(0)}/s), ${overload.refused} refused, ${overload.errors} errors; ${overloadWindows.length} windows`);

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
    const verdict = (ok: boolean) => (ok ? 'holds' : 'FAILS');
    console.log(`\nOverload acceptance (figures from this run; capacity ${Math.round(capacity)} req/s, its p99 ${atCapacity.latencyMs.p99.toFixed(2)} ms):`);
    console.log(`  goodput at 2x: ${figures.goodput.toFixed(0)}/s = ${(figures.goodputRatio * 100).toFixed(0)}% of capacity (>= 90%): ${verdict(figures.goodputRatio >= 0.9)}`);
    console.log(`  accepted p99 at 2x: ${overload.okP99.toFixed(2)} ms = ${figures.acceptedP99Ratio.toFixed(2)}x the p99 at capacity (< 2x): ${verdict(figures.acceptedP99Ratio < 2)}`);
    console.log(`  refusals' p99: ${overload.refusedP99.toFixed(2)} ms (< 5 ms): ${verdict(overload.refusedP99 < 5 && overload.refused > 0)}${overload.refused === 0 ? ' (no refusals)' : ''}`);
    console.log(`  back to normal (every ${WINDOW_MS} ms window's p99 within the baseline's, no refusals) ${Number.isFinite(recovery) ? `${recovery.toFixed(2)} s` : 'never'} after the overload stopped (<= 2 s): ${verdict(recovery <= 2)}`);
    console.log(`  without admission control: goodput ${(figures.offGoodputRatio * 100).toFixed(0)}% of capacity, p50 ${off.okLatencyMs.p50.toFixed(1)} ms, p99 ${off.okLatencyMs.p99.toFixed(1)} ms`);
    if (atCapacity.saturated || off.saturated || summarise([run]).saturated) console.log('  note: the load generator was saturated in at least one run (see above)');
  } finally {
    sluice.child.kill('SIGTERM');
    unprotected.child.kill('SIGTERM');
  }
  return figures;
}

/** Counts and percentiles of the requests sent during the overload phase only. */
function summariseWindows(run: RunResult, untilS: number): { ok: number; refused: number; errors: number; okP99: number; refusedP99: number } {
  const ok = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 2 });
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
