/**
 * gRPC figures, measured side by side in one run with open-loop generators:
 *  1. Sluice ModelInfer at a fixed rate from the Node harness (SLUICE_BENCH_GRPC_RATE, default
 *     2,000 calls/s, about what one Node grpc-js client process can generate on this machine:
 *     ~300 us of CPU per call): p99, errors;
 *  2. ModelInfer at SLUICE_BENCH_GRPC_GO_RATE (default 10,000) calls/s from the Go generator
 *     (loadtest/grpc-go: grpc-go, raw bytes, latency from each call's scheduled time), against
 *     Sluice and against a bare grpc-js server returning the same answer (bench/bare-grpc.ts),
 *     each beside a hiccup meter; built with `go build` when go is on PATH, skipped otherwise;
 *  3. capacity of Sluice and of the bare grpc-js server, side by side with h2load, and the ratio;
 * Every path timed is checked first, against demo-logistic's formula (ModelInfer on both
 * servers). Stream throughput is bench/streams.ts. `npm run bench -- grpc [--quick]`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import { buildGoLoad, describeGoLoad, goLoad, type GoLoadReport } from './go-load.js';
import { hasH2load } from './h2load.js';
import { framed, singleRequest } from './single-row.js';

const pkg = grpc.loadPackageDefinition(packageDefinition) as any;

/** Closed-loop ModelInfer calls with h2load; the body is a framed, serialized request. */
async function h2load(address: string, n: number): Promise<{ rate: number; meanMs: number; maxMs: number }> {
  const file = path.join(tmpdir(), `sluice-h2load-${process.pid}.bin`);
  writeFileSync(file, framed(await singleRequest(address)));
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
    const fixed = summarise([await runGrpcOpenLoop(target, { rate, durationS: quick ? 5 : 10, connections: 4 })]);
    console.log(`\nSluice gRPC ModelInfer, demo-logistic, ${rate} calls/s offered (open loop, 1 grpc-js client process):\n${describe(fixed)}\n${describeHiccups(await hiccups.stop())}`);
    figures.fixedRate = rate;
    figures.fixedP99Ms = fixed.latencyMs.p99;
    figures.fixedErrors = fixed.errorCount;

    // 2. The rate, which a Node client cannot offer here: the Go generator, against
    // Sluice and then the bare grpc-js server, each beside a hiccup meter.
    const goDir = mkdtempSync(path.join(tmpdir(), 'sluice-grpc-go-'));
    try {
      const bin = await buildGoLoad(goDir);
      if (bin) {
        const goRate = Number(process.env.SLUICE_BENCH_GRPC_GO_RATE ?? 10_000);
        const durationS = quick ? 5 : 30;
        const requestFile = path.join(goDir, 'model-infer-request.bin');
        writeFileSync(requestFile, await singleRequest(sluice.grpc));
        const runs: Array<[string, GoLoadReport]> = [];
        for (const [label, address] of [['Sluice', sluice.grpc], ['bare grpc-js (same answer)', bare.address]] as const) {
          const meter = startHiccupMeter();
          const r = await goLoad(bin, address, requestFile, goRate, durationS, 4);
          // An overloaded server may still be working through calls the generator gave up on:
          // one more checked answer waits for it (and checks it still answers correctly), so the
          // next run does not share the CPU with this one's backlog.
          await checkAnswer(address, label);
          console.log(`\n${label} gRPC ModelInfer, demo-logistic, ${goRate} calls/s offered for ${durationS} s (open loop, Go generator, 4 connections):\n${describeGoLoad(r)}\n  ${describeHiccups(await meter.stop())}`);
          runs.push([label, r]);
        }
        table(`gRPC ModelInfer at ${goRate} calls/s offered, Go generator, side by side`, ['server', 'achieved/s', 'errors', 'p50 ms', 'p99 ms', 'max ms', 'gen CPU'],
          runs.map(([label, r]) => [label, r.achievedRate, String(r.errorCount), r.latencyMs.p50, r.latencyMs.p99, r.latencyMs.max, r.cpu.cores]));
        const [, s] = runs[0]!;
        const [, b] = runs[1]!;
        figures.goRate = goRate;
        figures.goAchievedRate = s.achievedRate;
        figures.goP99Ms = s.latencyMs.p99;
        figures.goErrors = s.errorCount;
        figures.goGeneratorCpu = s.cpu.cores;
        figures.goBareAchievedRate = b.achievedRate;
        figures.goBareP99Ms = b.latencyMs.p99;
        figures.goBareErrors = b.errorCount;
      }
    } finally {
      rmSync(goDir, { recursive: true, force: true });
    }

    // 3. Capacity, side by side, with h2load (nghttp2-client) when installed: a Node client
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
    bare.child.kill('SIGTERM');
    await sluice.stop();
  }
  return figures;
}
