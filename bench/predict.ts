/**
 * `sluice predict` on a 1,000,000-row CSV (generated here, ~650 MB): exactly 1,000,000 outputs,
 * in order and correct (every 997th row checked against demo-logistic's formula, plus the first
 * and last), and the command's peak resident memory (GNU time). A 1,000-row run with every row
 * checked comes first. `npm run bench -- predict`.
 */
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { projectRoot } from '../src/paths.js';
import { check, table } from './util.js';
import { demoAnswer } from './engine-util.js';

const ROWS = Number(process.env.SLUICE_BENCH_PREDICT_ROWS ?? 1_000_000);

function row(i: number): number[] {
  // Deterministic, so any row can be recomputed when checking.
  const out = new Array<number>(100);
  let s = (i * 2654435761) >>> 0;
  for (let j = 0; j < 100; j++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[j] = Math.round((s / 2 ** 32) * 2000 - 1000) / 1000;
  }
  return out;
}

async function writeCsv(file: string, rows: number): Promise<void> {
  const w = createWriteStream(file);
  for (let i = 0; i < rows; i++) {
    if (!w.write(row(i).join(',') + '\n')) await once(w, 'drain');
  }
  w.end();
  await once(w, 'close');
}

/** Runs `sluice predict` under GNU time; its stdout and peak resident memory. */
async function predict(input: string, output: string): Promise<{ stdout: string; maxRssMb: number }> {
  const r = await promisify(execFile)('/usr/bin/time', ['-f', 'MAXRSS %M', process.execPath, path.join(projectRoot, 'dist/src/cli/index.js'),
    'predict', '--model', 'demo-logistic', '--input', input, '--output', output, '--quiet'], { env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' } });
  return { stdout: r.stdout, maxRssMb: Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1]) / 1024 };
}

/** Exactly `rows` output lines, in order; every `every`-th (and the first and last) correct. */
async function checkOutput(output: string, rows: number, every: number): Promise<void> {
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(output), crlfDelay: Infinity })) {
    if (n % every === 0 || n === rows - 1) {
      const got = (JSON.parse(line) as { probability: number }).probability;
      check(Math.abs(got - demoAnswer(row(n).map(Math.fround))) < 1e-6, `row ${n}: ${got} vs ${demoAnswer(row(n))}`);
    }
    n++;
  }
  check(n === rows, `${n} output lines for ${rows} rows`);
}

export async function runPredict(): Promise<Record<string, number>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-predict-'));
  const input = path.join(dir, 'rows.csv');
  const output = path.join(dir, 'out.jsonl');
  try {
    // A small run first, every row checked, so a wrong answer stops the bench before it times.
    const probeRows = Math.min(ROWS, 1000);
    await writeCsv(input, probeRows);
    await predict(input, output);
    await checkOutput(output, probeRows, 1);

    await writeCsv(input, ROWS);
    const t0 = performance.now();
    const r = await predict(input, output);
    const seconds = (performance.now() - t0) / 1000;
    // And the timed run's own output: the count, the order, and a sample of the answers.
    await checkOutput(output, ROWS, 997);
    table(`sluice predict, ${ROWS.toLocaleString('en-US')}-row CSV, demo-logistic in-process`, ['rows', 'seconds', 'rows/s', 'peak RSS MB'],
      [[ROWS, seconds, ROWS / seconds, r.maxRssMb]]);
    console.log(r.stdout.trim());
    return { rows: ROWS, rowsPerSec: ROWS / seconds, maxRssMb: r.maxRssMb };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
