/**
 * HTTP figures, measured side by side in one run with the open-loop harness (loadtest/):
 *  1. Sluice at 10,000 req/s offered for 30 s, demo-logistic single-row JSON: p99 and errors;
 *  2. the highest rate holding p99 < 10 ms with 0 errors, for Sluice and for a bare
 *     uWebSockets.js handler doing the same parse and dot product (bench/bare-http.ts): ratio;
 *  3. binary tensor batches of 1,024 rows: highest rows/s holding the same SLO.
 * Both servers run as separate processes; every path timed is checked before anything is: the
 * JSON answer of both servers, and every row of a 1,024-row binary answer from Sluice.
 * `npm run bench -- http [--quick]`.
 */
import { findMax, type LoadOptions } from '../loadtest/cli.js';
import { runOpenLoop } from '../loadtest/open-loop.js';
import { describe, summarise } from '../loadtest/report.js';
import { buildTarget } from '../loadtest/target.js';
import { check, table } from './util.js';
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
      findMax: true, sloMs: 10, stepDuration: quick ? 2 : 5, stepFactor: 1.25, quiet: true,
    };

    // 1. Fixed rate.
    const target = await buildTarget({ ...base, url: sluice.http });
    const hiccups = startHiccupMeter();
    const fixed = summarise([await runOpenLoop(target, { rate: 10_000, durationS: base.duration, connections: base.connections })]);
    console.log(`\nSluice, demo-logistic JSON, 10,000 req/s offered for ${base.duration} s:\n${describe(fixed)}\n${describeHiccups(await hiccups.stop())}`);
    figures.fixedP99Ms = fixed.latencyMs.p99;
    figures.fixedErrors = fixed.errorCount;

    // 2. Highest rate under the SLO, both servers, same harness settings, back to back.
    const maxSluice = await findMax({ ...base, url: sluice.http, rate: 1_000 });
    const maxBare = await findMax({ ...base, url: bareUrl, rate: 1_000 });
    const last = (r: typeof maxSluice) => r.steps.filter((s) => s.pass).at(-1)?.summary;
    figures.maxSluice = maxSluice.maxRate;
    figures.maxBare = maxBare.maxRate;
    figures.ratio = maxBare.maxRate > 0 ? maxSluice.maxRate / maxBare.maxRate : 0;

    // 3. Binary batches of 1,024 rows.
    const maxBinary = await findMax({ ...base, url: sluice.http, batch: 1024, binary: true, rate: 50, connections: 8 });
    figures.binaryRowsPerSec = maxBinary.maxRate * 1024;

    const row = (label: string, r: typeof maxSluice, rows = 1) => {
      const s = last(r);
      // The step that failed, so a low or zero figure explains itself.
      const failed = r.steps.find((x) => !x.pass);
      const why = failed ? `${Math.round(failed.rate)}/s: p99 ${failed.summary.latencyMs.p99.toFixed(1)} ms, ${failed.summary.errorCount} errors` : '-';
      return [label, Math.round(r.maxRate), Math.round(r.maxRate * rows), s ? s.latencyMs.p99.toFixed(3) : '-', s ? `${(s.generatorCpu * 100).toFixed(0)}%${s.saturated ? ' (saturated)' : ''}` : '-', why];
    };
    table(`Highest rate holding p99 < 10 ms with 0 errors (open loop, ${base.connections} connections, steps x1.25)`,
      ['server', 'req/s', 'rows/s', 'p99 ms', 'generator CPU', 'first failing step'],
      [row('bare uWS (JSON parse + dot)', maxBare), row('Sluice demo-logistic JSON', maxSluice), row('Sluice binary 1024 rows', maxBinary, 1024)]);
    console.log(`Sluice / bare uWS = ${figures.ratio.toFixed(2)}`);
  } finally {
    sluice.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
  return figures;
}
