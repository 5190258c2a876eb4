/**
 * gRPC figures, measured side by side in one run with the open-loop harness:
 *  1. Sluice ModelInfer at a fixed rate (open loop; SLUICE_BENCH_GRPC_RATE, default 2,000 calls/s,
 *     what one Node grpc-js client can generate on this machine): p99, errors;
 *  2. capacity of Sluice and of a bare grpc-js server returning the same answer
 *     (bench/bare-grpc.ts), side by side with h2load, and the ratio;
 * Every path timed is checked first, against demo-logistic's formula (ModelInfer on both
 * servers). Stream throughput is bench/streams.ts. `npm run bench -- grpc [--quick]`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { buildGrpcTarget, runGrpcOpenLoop } from '../loadtest/grpc-load.js';
import { describe, summarise } from '../loadtest/report.js';
import { packageDefinition } from '../src/frontend/grpc/definition.js';
import { check, table } from './util.js';
import { startBare, startBenchSluice } from './server-process.js';
import { describeHiccups, startHiccupMeter } from './hiccup.js';
import { demoAnswer, features } from './engine-util.js';

const pkg = grpc.loadPackageDefinition(packageDefinition) as any;

async function hasH2load(): Promise<boolean> {
  return new Promise((resolve) => execFile('h2load', ['--version'], (e) => resolve(!e)));
}

/** Closed-loop ModelInfer calls with h2load; the body is a framed, serialized request. */
async function h2load(address: string, n: number): Promise<{ rate: number; meanMs: number; maxMs: number }> {
  const t = await buildGrpcTarget({ url: address, model: 'demo-logistic', batch: 1, stream: false }, 1);
  const msg = t.requests[0]!;
  const framed = Buffer.alloc(5 + msg.length);
  framed.writeUInt32BE(msg.length, 1);
  msg.copy(framed, 5);
  const file = path.join(tmpdir(), `sluice-h2load-${process.pid}.bin`);
  writeFileSync(file, framed);
  const out = await new Promise<string>((resolve, reject) => execFile('h2load', ['-n', String(n), '-c', '4', '-m', '16',
    '-H', 'content-type: application/grpc', '-H', 'te: trailers', '-d', file, `http://${address}/inference.GRPCInferenceService/ModelInfer`],
  (e, stdout) => (e ? reject(e) : resolve(stdout))));
  const rate = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
  const m = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  const ms = (v: string, u: string) => Number(v) * (u === 'us' ? 0.001 : u === 's' ? 1000 : 1);
  check(/(\d+) succeeded/.exec(out)?.[1] === String(n), `h2load: not every call succeeded:\n${out}`);
  return { rate, meanMs: m ? ms(m[5]!, m[6]!) : NaN, maxMs: m ? ms(m[3]!, m[4]!) : NaN };
}

/** Every row of a demo-logistic answer (FP32 bytes) against the formula. */
export function checkRows(label: string, b: Uint8Array, x: Float32Array, rows: number): void {
  const out = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  check(out.length === rows, `${label}: ${out.length} answers for ${rows} rows`);
  for (let r = 0; r < rows; r++) check(Math.abs(out[r]! - demoAnswer(x, r * 100)) < 1e-6, `${label} row ${r}: ${out[r]}, expected ${demoAnswer(x, r * 100)}`);
}

/** A stock (proto-loader) client: it decodes the answers independently of Sluice's codec. */
export function stockClient(address: string): any {
  return new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
}

async function checkAnswer(address: string, label: string): Promise<void> {
  const client = stockClient(address);
  const x = features(2, 77).data as Float32Array;
  const res = await new Promise<any>((resolve, reject) => client.ModelInfer({
    model_name: 'demo-logistic', inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 100] }],
    raw_input_contents: [Buffer.from(x.buffer)],
  }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
  client.close();
  checkRows(label, res.raw_output_contents[0], x, 2);
}

export async function runGrpc(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const sluice = await startBenchSluice();
  const bare = await startBare('bare-grpc');
  const figures: Record<string, number> = {};
  try {
    await checkAnswer(sluice.grpc, 'sluice');
    await checkAnswer(bare.address, 'bare grpc-js');
    // 1. A fixed rate a Node grpc-js client can generate here, open loop, for latency.
    const rate = Number(process.env.SLUICE_BENCH_GRPC_RATE ?? 2000);
    const target = await buildGrpcTarget({ url: sluice.grpc, model: 'demo-logistic', batch: 1, stream: false });
    const hiccups = startHiccupMeter();
    const fixed = summarise([await runGrpcOpenLoop(target, { rate, durationS: quick ? 5 : 30, connections: 4 })]);
    console.log(`\nSluice gRPC ModelInfer, demo-logistic, ${rate} calls/s offered (open loop, 1 grpc-js client process):\n${describe(fixed)}\n${describeHiccups(await hiccups.stop())}`);
    figures.fixedRate = rate;
    figures.fixedP99Ms = fixed.latencyMs.p99;
    figures.fixedErrors = fixed.errorCount;

    // 2. Capacity, side by side, with h2load (nghttp2-client) when installed: a Node client
    // saturates far below either server here.
    const h2 = (address: string) => h2load(address, quick ? 10_000 : 60_000);
    if (await hasH2load()) {
      const bareRun = await h2(bare.address);
      const sluiceRun = await h2(sluice.grpc);
      const bare2 = await h2(bare.address);
      const sluice2 = await h2(sluice.grpc);
      const bareRate = Math.max(bareRun.rate, bare2.rate);
      const sluiceRate = Math.max(sluiceRun.rate, sluice2.rate);
      figures.h2loadBare = bareRate;
      figures.h2loadSluice = sluiceRate;
      figures.ratio = sluiceRate / bareRate;
      table('gRPC ModelInfer capacity, h2load closed loop (4 connections x 16 streams), best of 2 interleaved runs', ['server', 'calls/s', 'mean ms', 'max ms'],
        [['bare grpc-js (same answer)', bareRate, bareRun.meanMs, bareRun.maxMs], ['Sluice', sluiceRate, sluiceRun.meanMs, sluiceRun.maxMs]]);
      console.log(`Sluice / bare grpc-js = ${figures.ratio.toFixed(2)}`);
    } else {
      console.log('h2load not installed (apt-get install nghttp2-client): capacity comparison skipped');
    }

  } finally {
    sluice.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
  return figures;
}
