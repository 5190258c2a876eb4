/**
 * `npm run loadtest -- --url http://127.0.0.1:8000 --model demo-logistic --rate 10000
 *  --duration 30 [--connections 8] [--batch 1] [--binary] [--workers 2] [--find-max]
 *  [--protocol http|grpc|grpc-stream]`
 *
 * Open-loop load at a fixed rate against any Open Inference Protocol v2 server; prints the
 * achieved rate, errors and latency percentiles, writes a JSON report and an SVG plot, and says
 * when the load generator itself is the bottleneck. `--find-max` steps the rate up and reports
 * the highest rate that holds p99 < --slo-ms (10) with no errors and no refusals. Refusals under
 * overload (OVERLOADED: HTTP 503, gRPC UNAVAILABLE) are counted apart from errors, with their latency.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { runOpenLoop, type Progress, type RunResult } from './open-loop.js';
import { describe, summarise, svgPlot, type Summary } from './report.js';
import { buildTarget, type TargetOptions } from './target.js';
import { buildGrpcTarget, runGrpcOpenLoop } from './grpc-load.js';
import { projectRoot } from '../src/paths.js';

export type Protocol = 'http' | 'grpc' | 'grpc-stream';

export interface LoadOptions extends TargetOptions {
  protocol: Protocol;
  rate: number;
  duration: number;
  connections: number;
  workers: number;
  findMax: boolean;
  sloMs: number;
  stepDuration: number;
  stepFactor: number;
  /** --find-max: extra runs of a failing step before the search stops (0 when omitted). */
  stepRetries?: number;
  /**
   * --find-max: after the first failing step, bisects (geometrically) between the last passing
   * rate and it this many times, so the result is known to within stepFactor^(1/2^refine)
   * rather than stepFactor (0 when omitted).
   */
  refine?: number;
  report?: string;
  quiet: boolean;
}

/** A commander parser for a numeric option that must pass `ok` (`what` says what it must be). */
const numeric = (name: string, ok: (n: number) => boolean, what: string) => (v: string) => {
  const n = Number(v);
  if (!ok(n)) throw new InvalidArgumentError(`${name} must be ${what}`);
  return n;
};
const positive = (name: string) => numeric(name, (n) => Number.isFinite(n) && n > 0, 'a positive number');
const nonNegative = (name: string) => numeric(name, (n) => Number.isInteger(n) && n >= 0, 'a whole number >= 0');

/** Runs one rate across `workers` processes (or in this one) and merges the results. */
async function runRate(o: LoadOptions, rate: number, durationS: number, label: string): Promise<Summary> {
  const progress = new Map<number, Progress>();
  const show = () => {
    if (o.quiet) return;
    let sent = 0;
    let answered = 0;
    let errors = 0;
    let elapsed = 0;
    for (const p of progress.values()) {
      sent += p.sent;
      answered += p.answered;
      errors += p.errors;
      elapsed = Math.max(elapsed, p.elapsedS);
    }
    process.stderr.write(`\r${label}: ${elapsed.toFixed(0)}/${durationS}s sent ${sent} answered ${answered} errors ${errors}   `);
  };
  let results: RunResult[];
  if (o.workers <= 1) {
    results = [await runOnce(o, rate, durationS, o.connections, (p) => { progress.set(0, p); show(); })];
  } else {
    // Workers always run the compiled harness (this module may be running from source in tests).
    const self = path.join(projectRoot, 'dist', 'loadtest', 'cli.js');
    results = await Promise.all(Array.from({ length: o.workers }, (_, i) => new Promise<RunResult>((resolve, reject) => {
      const child = fork(self, ['--child'], { env: { ...process.env, SLUICE_LOADTEST_CHILD: JSON.stringify({ ...o, rate: rate / o.workers, duration: durationS, connections: Math.max(1, Math.round(o.connections / o.workers)) }) } });
      child.on('message', (m: { progress?: Progress; result?: RunResult; error?: string }) => {
        if (m.progress) {
          progress.set(i, m.progress);
          show();
        }
        if (m.result) resolve(m.result);
        if (m.error) reject(new Error(m.error));
      });
      child.once('exit', (code) => code !== 0 && reject(new Error(`load worker exited ${code}`)));
    })));
  }
  if (!o.quiet) process.stderr.write('\n');
  return summarise(results);
}

function save(o: LoadOptions, report: unknown, plot: string): string {
  const file = o.report ?? path.join('reports', `loadtest-${o.model}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  const svg = file.replace(/\.json$/, '') + '.svg';
  writeFileSync(svg, plot);
  return file;
}

export interface FindMaxResult {
  maxRate: number;
  /** Every run, retries included (`attempt` counts from 1 at each rate). */
  steps: Array<{ rate: number; attempt: number; pass: boolean; summary: Summary }>;
}

/**
 * Steps the offered rate up until p99 >= SLO or any error; returns the last passing rate. A
 * failing step is run again up to `stepRetries` times and passes if any run passes: on a shared
 * machine one stall of the platform fails a step at any rate, while a real limit fails every time.
 */
export async function findMax(o: LoadOptions): Promise<FindMaxResult> {
  const steps: FindMaxResult['steps'] = [];
  const retries = o.stepRetries ?? 0;
  let rate = o.rate;
  let maxRate = 0;
  let failed: number | undefined;
  for (let i = 0; i < 40; i++) {
    if (!(await passes(o, rate, `step ${i + 1} @ ${Math.round(rate)} req/s`, steps, retries))) {
      failed = rate;
      break;
    }
    maxRate = rate;
    rate *= o.stepFactor;
  }
  // Bisect between the last pass and the first failure, when both exist: ratios of two
  // searches then move by less than one step factor (x1.25 steps quantise a ratio to
  // powers of 1.25: 0.64, 0.8, 1).
  for (let i = 0; i < (o.refine ?? 0) && maxRate > 0 && failed !== undefined; i++) {
    const mid = Math.sqrt(maxRate * failed);
    const pass = await passes(o, mid, `refine ${i + 1} @ ${Math.round(mid)} req/s`, steps, retries);
    if (pass) maxRate = mid;
    else failed = mid;
  }
  return { maxRate, steps };
}

/** Runs `rate` up to 1 + retries times (recording each in `steps`); true if any run passes. */
async function passes(o: LoadOptions, rate: number, label: string, steps: FindMaxResult['steps'], retries: number): Promise<boolean> {
  let pass = false;
  for (let attempt = 1; attempt <= 1 + retries && !pass; attempt++) {
    const s = await runRate(o, rate, o.stepDuration, `${label}${attempt > 1 ? ` (again, ${attempt})` : ''}`);
    // A refusal (load shed) fails a step like an error: the rate was not served.
    pass = s.errorCount === 0 && s.refused === 0 && s.latencyMs.p99 < o.sloMs && s.achievedRate >= 0.95 * rate;
    steps.push({ rate, attempt, pass, summary: s });
    if (!o.quiet) console.log(`  ${Math.round(rate)} req/s${attempt > 1 ? ` (run ${attempt})` : ''}: ${pass ? 'pass' : 'FAIL'}  achieved ${s.achievedRate.toFixed(0)}  p99 ${s.latencyMs.p99.toFixed(3)} ms  errors ${s.errorCount}${s.refused ? `  refused ${s.refused}` : ''}  generator CPU ${(s.generatorCpu * 100).toFixed(0)}%${s.saturated ? ' (saturated)' : ''}`);
  }
  return pass;
}

export async function main(argv: string[]): Promise<void> {
  const cmd = new Command('loadtest')
    .description('Open-loop load test of an Open Inference Protocol v2 server')
    .requiredOption('--url <url>', 'server: http://127.0.0.1:8000, or host:port for gRPC')
    .option('--protocol <p>', 'http, grpc (unary ModelInfer) or grpc-stream (ModelStreamInfer)', 'http')
    .requiredOption('--model <name>', 'model to call')
    .option('--rate <n>', 'offered requests per second (with --find-max: the first step)', positive('rate'), 1000)
    .option('--duration <s>', 'seconds to run', positive('duration'), 10)
    .option('--connections <n>', 'keep-alive connections (pipelined)', positive('connections'), 8)
    .option('--batch <n>', 'rows per request', positive('batch'), 1)
    .option('--binary', 'send and receive tensors with the binary extension', false)
    .option('--workers <n>', 'load-generator processes', positive('workers'), 1)
    .option('--find-max', 'step the rate up to the highest that holds the SLO', false)
    .option('--slo-ms <ms>', 'p99 latency target for --find-max', positive('slo-ms'), 10)
    .option('--step-duration <s>', 'seconds per --find-max step', positive('step-duration'), 5)
    .option('--step-retries <n>', 'runs again a failing --find-max step up to n times (it passes if any run does)', nonNegative('step-retries'), 1)
    .option('--step-factor <x>', 'rate multiplier between steps', positive('step-factor'), 1.25)
    .option('--refine <n>', 'after the first failing step, bisects between it and the last passing rate n times', nonNegative('refine'), 0)
    .option('--header <k:v...>', 'extra request header (repeatable)')
    .option('--report <file>', 'JSON report path (an .svg plot is written beside it)')
    .option('--quiet', 'no progress output', false);
  cmd.parse(argv, { from: 'user' });
  const a = cmd.opts();
  const headers = Object.fromEntries(((a.header as string[] | undefined) ?? []).map((h) => {
    const i = h.indexOf(':');
    return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
  }));
  if (!['http', 'grpc', 'grpc-stream'].includes(a.protocol)) throw new Error(`--protocol must be http, grpc or grpc-stream, not ${a.protocol}`);
  if (a.binary && a.protocol !== 'http') throw new Error('--binary applies to --protocol http (gRPC always sends raw tensors)');
  const o: LoadOptions = {
    protocol: a.protocol as Protocol,
    url: a.url, model: a.model, rate: a.rate, duration: a.duration, connections: Math.round(a.connections),
    batch: Math.round(a.batch), binary: a.binary, workers: Math.round(a.workers), findMax: a.findMax, sloMs: a.sloMs,
    stepDuration: a.stepDuration, stepFactor: a.stepFactor, stepRetries: Math.round(a.stepRetries), refine: a.refine, report: a.report, quiet: a.quiet, headers,
  };
  if (o.findMax) {
    const r = await findMax(o);
    const best = r.steps.filter((s) => s.pass).at(-1);
    console.log(`highest rate holding p99 < ${o.sloMs} ms with 0 errors: ${Math.round(r.maxRate)} req/s (${Math.round(r.maxRate * o.batch)} rows/s)`);
    if (best?.summary.saturated) console.log('note: the load generator was saturated at that rate; the server may go higher');
    const file = save(o, { options: o, maxRate: r.maxRate, rowsPerSecond: r.maxRate * o.batch, steps: r.steps.map((s) => ({ rate: s.rate, attempt: s.attempt, pass: s.pass, ...s.summary })) },
      svgPlot(`${o.model}: latency by percentile per offered rate`, r.steps.map((s) => ({ label: `${Math.round(s.rate)} req/s${s.attempt > 1 ? ` #${s.attempt}` : ''} ${s.pass ? '' : '(fail)'}`, curve: s.summary.curve }))));
    console.log(`report: ${file}`);
    return;
  }
  const s = await runRate(o, o.rate, o.duration, `${o.model} @ ${o.rate} req/s`);
  console.log(describe(s));
  const file = save(o, { options: o, ...s }, svgPlot(`${o.model} @ ${o.rate} req/s offered`, [{ label: `${o.rate} req/s`, curve: s.curve }]));
  console.log(`report: ${file}`);
}

/** One load-generator process's run, over the chosen protocol. */
async function runOnce(o: LoadOptions, rate: number, durationS: number, connections: number, onProgress: (p: Progress) => void): Promise<RunResult> {
  if (o.protocol === 'http') return runOpenLoop(await buildTarget(o), { rate, durationS, connections, onProgress });
  return runGrpcOpenLoop(await buildGrpcTarget({ ...o, stream: o.protocol === 'grpc-stream' }), { rate, durationS, connections, onProgress });
}

async function child(): Promise<void> {
  const o = JSON.parse(process.env.SLUICE_LOADTEST_CHILD!) as LoadOptions;
  try {
    const result = await runOnce(o, o.rate, o.duration, o.connections, (p) => process.send!({ progress: p }));
    process.send!({ result }, () => process.exit(0));
  } catch (e) {
    process.send!({ error: (e as Error).message }, () => process.exit(1));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--child')) void child();
  else main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`loadtest: ${(e as Error).message}`);
    process.exit(1);
  });
}
