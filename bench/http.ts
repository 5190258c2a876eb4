/**
 * HTTP figures, measured side by side in one run with the open-loop harness (loadtest/):
 *  1. Sluice at 10,000 req/s offered for 30 s (after 5 s of warm-up at that rate, not recorded),
 *     demo-logistic single-row JSON: p99 and errors; then the bare handler the same way, the
 *     floor this machine sets for that p99;
 *  2. the highest rate holding p99 < 10 ms with 0 errors, for Sluice and for a bare
 *     uWebSockets.js handler doing the same parse and dot product (bench/bare-http.ts), in
 *     three interleaved rounds (one with --quick): the ratio of the medians;
 *  3. binary tensor batches of 1,024 rows: highest rows/s holding the same SLO, for Sluice and
 *     for the bare server only moving the same batches (the machine's ceiling for the figure).
 * Both servers run as separate processes; every path timed is checked before anything is: the
 * JSON answer of both servers, and every row of a 1,024-row binary answer from Sluice.
 * `npm run bench -- http [--quick]`.
 */
import { findMax, type FindMaxResult, type LoadOptions } from '../loadtest/cli.js';
import { runOpenLoop } from '../loadtest/open-loop.js';
import { describe, summarise } from '../loadtest/report.js';
import { buildTarget } from '../loadtest/target.js';
import { check, median, table } from './util.js';
import { startBare, startBenchSluice } from './server-process.js';
import { startHiccupMeter, describeHiccups } from './hiccup.js';
import { demoAnswer, features } from './engine-util.js';

async function checkAnswer(url: string, label: string): Promise<void> {
  const x = Array.from({ length: 100 }, (_, i) => Math.fround(Math.sin(i)));
  const res = await fetch(`${url}/v2/models/demo-logistic/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: x }] }),
  });
  const got = ((await res.json()) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data[0]!;
  check(Math.abs(got - demoAnswer(x)) < 1e-6, `${label} answered ${got}, expected ${demoAnswer(x)}`);
}

/** The binary tensor extension as the load generator sends it (loadtest/target.ts), all rows checked. */
async function checkBinaryAnswer(url: string, rows: number): Promise<void> {
  const x = features(rows, 31).data as Float32Array;
  const head = Buffer.from(JSON.stringify({
    inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 100], parameters: { binary_data_size: x.byteLength } }],
    parameters: { binary_data_output: true },
  }));
  const res = await fetch(`${url}/v2/models/demo-logistic/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.byteLength) },
    body: Buffer.concat([head, Buffer.from(x.buffer, x.byteOffset, x.byteLength)]),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  check(res.status === 200, `binary ${rows} rows: status ${res.status}: ${Buffer.from(bytes.subarray(0, 200)).toString()}`);
  const jsonLength = Number(res.headers.get('inference-header-content-length'));
  const out = new Float32Array(bytes.slice(jsonLength).buffer);
  check(out.length === rows, `binary ${rows} rows: ${out.length} answers`);
  for (let r = 0; r < rows; r++) check(Math.abs(out[r]! - demoAnswer(x, r * 100)) < 1e-6, `binary row ${r}: ${out[r]}, expected ${demoAnswer(x, r * 100)}`);
}

export async function runHttp(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const sluice = await startBenchSluice();
  const bare = await startBare('bare-http');
  const bareUrl = `http://${bare.address}`;
  const figures: Record<string, number> = {};
  try {
    await checkAnswer(sluice.http, 'sluice');
    await checkAnswer(bareUrl, 'bare uWS');
    await checkBinaryAnswer(sluice.http, 1024);
    const base: Omit<LoadOptions, 'url'> = {
      protocol: 'http', model: 'demo-logistic', batch: 1, binary: false, rate: 10_000, duration: quick ? 5 : 30, connections: 16, workers: 1,
      findMax: true, sloMs: 10, stepDuration: quick ? 2 : 5, stepFactor: 1.25, stepRetries: 1, quiet: true,
    };

    // 1. Fixed rate, Sluice and then the bare handler (the floor this machine sets for the p99).
    for (const [who, url] of [['Sluice', sluice.http], ['bare uWS', bareUrl]] as const) {
      const target = await buildTarget({ ...base, url });
      // Warm-up at the same rate, not recorded: a cold server compiles its hot path under the
      // first seconds of load, and that is start-up, not the steady state the figure is about.
      await runOpenLoop(target, { rate: 10_000, durationS: quick ? 2 : 5, connections: base.connections });
      const hiccups = startHiccupMeter();
      const fixed = summarise([await runOpenLoop(target, { rate: 10_000, durationS: base.duration, connections: base.connections })]);
      console.log(`\n${who}, demo-logistic JSON, 10,000 req/s offered for ${base.duration} s (after ${quick ? 2 : 5} s of warm-up):\n${describe(fixed)}\n${describeHiccups(await hiccups.stop())}`);
      if (who === 'Sluice') {
        figures.fixedP99Ms = fixed.latencyMs.p99;
        figures.fixedErrors = fixed.errorCount;
      } else {
        figures.fixedBareP99Ms = fixed.latencyMs.p99;
      }
    }

    // 2. Highest rate under the SLO, both servers, same harness settings, in interleaved rounds
    //    (which server goes first alternates): one round's tail on this VM can swing either way.
    const rounds = quick ? 1 : 3;
    const sluiceRuns: FindMaxResult[] = [];
    const bareRuns: FindMaxResult[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['sluice', 'bare'] as const : ['bare', 'sluice'] as const;
      for (const who of order) {
        if (who === 'sluice') sluiceRuns.push(await findMax({ ...base, url: sluice.http, rate: 1_000 }));
        else bareRuns.push(await findMax({ ...base, url: bareUrl, rate: 1_000 }));
      }
    }
    figures.maxSluice = median(sluiceRuns.map((x) => x.maxRate));
    figures.maxBare = median(bareRuns.map((x) => x.maxRate));
    figures.ratio = figures.maxBare > 0 ? figures.maxSluice / figures.maxBare : 0;

    // 3. Binary batches of 1,024 rows; and, as the ceiling, the bare server moving the same
    //    batches without computing anything (transport only).
    const binaryLoad = { ...base, batch: 1024, binary: true, rate: 50, connections: 8 };
    const maxBinary = await findMax({ ...binaryLoad, url: sluice.http });
    const maxBinaryBare = await findMax({ ...binaryLoad, url: bareUrl });
    figures.binaryRowsPerSec = maxBinary.maxRate * 1024;
    figures.binaryBareRowsPerSec = maxBinaryBare.maxRate * 1024;

    // The step that failed, so a low or zero figure explains itself.
    const cell = (r: FindMaxResult, rows = 1) => {
      const s = r.steps.filter((x) => x.pass).at(-1)?.summary;
      const end = r.steps.at(-1);
      const failed = end && !end.pass ? end : undefined;
      const why = failed ? `fails ${Math.round(failed.rate)}/s: p99 ${failed.summary.latencyMs.p99.toFixed(1)} ms${failed.summary.errorCount ? `, ${failed.summary.errorCount} errors` : ''}${failed.summary.saturated ? ', generator saturated' : ''}` : '-';
      return `${Math.round(r.maxRate * rows)}${rows > 1 ? ' rows/s' : ''} (p99 ${s ? s.latencyMs.p99.toFixed(1) : '-'} ms; ${why})`;
    };
    table(`Highest rate holding p99 < 10 ms with 0 errors (open loop, ${base.connections} connections, steps x1.25, a failing step run once more), ${rounds} interleaved round(s)`,
      ['round', 'Sluice demo-logistic JSON', 'bare uWS (JSON parse + dot)', 'ratio'],
      sluiceRuns.map((x, i) => [String(i + 1), cell(x), cell(bareRuns[i]!), bareRuns[i]!.maxRate > 0 ? (x.maxRate / bareRuns[i]!.maxRate).toFixed(2) : '-']));
    console.log(`Binary 1,024-row batches: Sluice ${cell(maxBinary, 1024)}; bare uWS moving the same batches without computing (transport only) ${cell(maxBinaryBare, 1024)}`);
    console.log(`Sluice / bare uWS, medians of the rounds: ${Math.round(figures.maxSluice)} / ${Math.round(figures.maxBare)} = ${figures.ratio.toFixed(2)}`);
  } finally {
    bare.child.kill('SIGTERM');
    await sluice.stop();
  }
  return figures;
}
