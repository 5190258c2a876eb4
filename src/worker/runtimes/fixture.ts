/**
 * Test-only models (kind `fixture`), loadable only when SLUICE_ALLOW_FIXTURE_MODELS is set.
 * They make failure paths testable with real threads: slow batches, model errors, non-finite
 * outputs and worker crashes, each triggered by a marker value in the input so one bad request
 * can be mixed with good ones.
 *
 * parameters: { op: "sum" | "echo", delay_us?, sleep_us?, error_on?, crash_on?, nan_on?, fail_while_exists?,
 *               hang_while_exists?, hang_ms?, fail_every?, offset? }
 *  - sum: output [-1, 1] = sum of each row (+ offset: a version that predicts differently, for
 *    the canary drift check); echo: output = input.
 *  - delay_us: busy-waits this long per batch (simulates compute; blocks its thread).
 *  - sleep_us: blocks its thread this long per batch without using CPU (simulates a model
 *    waiting on something: slow without starving the other threads of a small machine).
 *  - error_on / nan_on / crash_on: if any input element equals this value the batch throws,
 *    outputs NaN, or the worker thread exits (crash is refused for inline dispatch).
 *  - fail_while_exists: a file path; every batch throws while that file exists. A test creates
 *    and removes the file to make the model fail and recover, on every worker thread at once.
 *  - hang_while_exists: a file path; while it exists every batch blocks its thread for hang_ms
 *    (default 2000) before answering (Atomics.wait: the thread sleeps, no CPU is burnt).
 *  - fail_every: every n-th batch on a thread throws (n = 5: a version failing 20% of its
 *    single-row requests, for canary tests).
 */
import { existsSync } from 'node:fs';
import { SluiceError } from '../../errors.js';
import type { Manifest } from '../../model/manifest.js';
import type { TypedArray } from '../../model/tensor.js';
import type { BatchTensor, LoadOptions, Runtime } from './types.js';

/** Never notified: Atomics.wait on it just blocks the thread for its timeout. */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function loadFixture(m: Manifest, opts: LoadOptions): Runtime {
  if (!opts.allowFixtures) {
    throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: fixture models are disabled (test only)`);
  }
  const p = m.parameters;
  const op = p.op === 'echo' ? 'echo' : 'sum';
  const delayUs = num(p.delay_us) ?? 0;
  const sleepUs = num(p.sleep_us) ?? 0;
  const errorOn = num(p.error_on);
  const crashOn = num(p.crash_on);
  const nanOn = num(p.nan_on);
  const failWhile = typeof p.fail_while_exists === 'string' ? p.fail_while_exists : undefined;
  const hangWhile = typeof p.hang_while_exists === 'string' ? p.hang_while_exists : undefined;
  const hangMs = num(p.hang_ms) ?? 2000;
  const failEvery = num(p.fail_every);
  const offset = num(p.offset) ?? 0;
  let batches = 0;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const inp = m.signature.inputs[0];
  if (m.signature.inputs.length !== 1 || !inp || inp.datatype !== 'FP32') {
    throw new SluiceError('MODEL_LOAD_FAILED', 'fixture models take one FP32 input');
  }
  if (crashOn !== undefined && !opts.inWorker) {
    throw new SluiceError('MODEL_LOAD_FAILED', `${m.name}@${m.version}: crash_on fixtures must run in the pool`);
  }
  const cols = inp.shape.slice(1).reduce((a, b) => a * Math.max(b, 1), 1);
  return {
    manifest: m,
    run(inputs: readonly BatchTensor[], rows: number, into?: readonly TypedArray[]): BatchTensor[] {
      const x = inputs[0]!.data as Float32Array;
      if (crashOn !== undefined && x.includes(crashOn)) {
        // Only reachable in a worker (load refuses crash_on inline): ends this thread, not the process.
        if (opts.inWorker) process.exit(70);
      }
      if (errorOn !== undefined && x.includes(errorOn)) {
        throw new Error(`fixture error at /internal/path/secret-${errorOn}`);
      }
      if (failWhile !== undefined && existsSync(failWhile)) throw new Error('fixture failing while its switch file exists');
      if (failEvery !== undefined && ++batches % failEvery === 0) throw new Error(`fixture failing every ${failEvery}th batch`);
      if (hangWhile !== undefined && existsSync(hangWhile)) Atomics.wait(sleeper, 0, 0, hangMs);
      if (delayUs > 0) {
        const until = performance.now() + delayUs / 1000;
        while (performance.now() < until) { /* busy: simulates a compute-bound model */ }
      }
      if (sleepUs > 0) Atomics.wait(SLEEPER, 0, 0, sleepUs / 1000);
      const poison = nanOn !== undefined && x.includes(nanOn);
      if (op === 'echo') {
        const out = (into?.[0] as Float32Array | undefined) ?? new Float32Array(x.length);
        out.set(x);
        if (poison) out.fill(NaN);
        return [{ data: out, shape: [...inputs[0]!.shape] }];
      }
      const out = (into?.[0] as Float32Array | undefined) ?? new Float32Array(rows);
      for (let r = 0; r < rows; r++) {
        let s = offset;
        for (let c = 0; c < cols; c++) s += x[r * cols + c]!;
        out[r] = poison ? NaN : s;
      }
      return [{ data: out, shape: [rows, 1] }];
    },
    async dispose() {},
  };
}
