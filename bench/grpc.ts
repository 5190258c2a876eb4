/**
 * gRPC figures, measured side by side in one run with the open-loop harness:
 *  1. Sluice ModelInfer at a fixed rate (open loop; SLUICE_BENCH_GRPC_RATE, default 2,000 calls/s,
 *     what one Node grpc-js client can generate on this machine): p99, errors;
 *  2. capacity of Sluice and of a bare grpc-js server returning the same answer
 *     (bench/bare-grpc.ts), side by side with h2load, and the ratio;
 *  3. streaming throughput with 1,024-row requests: gRPC ModelStreamInfer and the WebSocket
 *     stream, closed loop with a window of requests in flight.
 * Every path timed is checked first, against demo-logistic's formula: ModelInfer on both servers,
 * and a 1,024-row request on each stream. `npm run bench -- grpc [--quick]`.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Packr } from 'msgpackr';
import { WebSocket } from 'undici';
import { buildGrpcTarget, rawClient, runGrpcOpenLoop, streamAnswer } from '../loadtest/grpc-load.js';
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
function checkRows(label: string, b: Uint8Array, x: Float32Array, rows: number): void {
  const out = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  check(out.length === rows, `${label}: ${out.length} answers for ${rows} rows`);
  for (let r = 0; r < rows; r++) check(Math.abs(out[r]! - demoAnswer(x, r * 100)) < 1e-6, `${label} row ${r}: ${out[r]}, expected ${demoAnswer(x, r * 100)}`);
}

/** A stock (proto-loader) client: it decodes the answers independently of Sluice's codec. */
function stockClient(address: string): any {
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

/** One request of `rows` rows on ModelStreamInfer, as the stream figure sends them. */
async function checkStreamAnswer(address: string, rows: number): Promise<void> {
  const client = stockClient(address);
  const x = features(rows, 78).data as Float32Array;
  const stream = client.ModelStreamInfer();
  const a = await new Promise<any>((resolve, reject) => {
    stream.once('data', resolve);
    stream.once('error', reject);
    stream.write({ model_name: 'demo-logistic', id: 'probe', inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 100] }], raw_input_contents: [Buffer.from(x.buffer)] });
  });
  stream.end();
  client.close();
  check(!a.error_message, `gRPC stream answered an error: ${a.error_message}`);
  checkRows('gRPC stream', a.infer_response.raw_output_contents[0], x, rows);
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

/** The WebSocket stream's request: `rows` rows, the same every time. */
function wsRequest(rows: number): { x: Float32Array; frame: Buffer } {
  const x = features(rows, 5).data as Float32Array;
  return { x, frame: packr.pack({ id: 0, model: 'demo-logistic', inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 100], data: new Uint8Array(x.buffer) }] }) };
}

async function openWs(httpUrl: string): Promise<WebSocket> {
  const ws = new WebSocket(httpUrl.replace(/^http/, 'ws') + '/v2/stream');
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve);
    ws.addEventListener('error', reject);
  });
  return ws;
}

/** The frame the WebSocket figure sends, once, every row of its answer checked. */
async function checkWsAnswer(httpUrl: string, rows: number): Promise<void> {
  const { x, frame } = wsRequest(rows);
  const ws = await openWs(httpUrl);
  const a = await new Promise<{ error?: string; outputs?: Array<{ data: Uint8Array }> }>((resolve) => {
    ws.addEventListener('message', (ev) => resolve(packr.unpack(Buffer.from(ev.data as ArrayBuffer))), { once: true });
    ws.send(frame);
  });
  ws.close();
  check(a.outputs !== undefined, `WebSocket stream answered an error: ${a.error}`);
  checkRows('WebSocket stream', a.outputs![0]!.data, x, rows);
}

/** Closed-loop stream throughput: keep `window` requests of `rows` rows in flight for `ms`. */
async function grpcStreamRows(address: string, rows: number, window: number, ms: number): Promise<number> {
  const target = await buildGrpcTarget({ url: address, model: 'demo-logistic', batch: rows, stream: true }, 4);
  const client = rawClient(address);
  const stream = client.stream();
  let done = 0;
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const send = () => stream.write(target.requests[sent++ % target.requests.length]!);
    stream.on('data', (b: Buffer) => {
      check(!streamAnswer(b).error, 'stream answered with an error');
      done++;
      if (performance.now() - t0 < ms) send();
      else if (done === sent) resolve();
    });
    for (let i = 0; i < window; i++) send();
  });
  const s = (performance.now() - t0) / 1000;
  stream.end();
  client.close();
  return (done * rows) / s;
}

async function wsRows(httpUrl: string, rows: number, window: number, ms: number): Promise<number> {
  const { frame } = wsRequest(rows);
  const ws = await openWs(httpUrl);
  let done = 0;
  let sent = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    ws.addEventListener('message', (ev) => {
      // Not decoded while timed: an answer without its rows x 4 bytes of outputs is an error.
      check((ev.data as ArrayBuffer).byteLength >= rows * 4, 'WebSocket stream answered an error');
      done++;
      if (performance.now() - t0 < ms) {
        ws.send(frame);
        sent++;
      } else if (done === sent) resolve();
    });
    for (; sent < window; sent++) ws.send(frame);
  });
  const s = (performance.now() - t0) / 1000;
  ws.close();
  return (done * rows) / s;
}

export async function runGrpc(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const sluice = await startBenchSluice();
  const bare = await startBare('bare-grpc');
  const figures: Record<string, number> = {};
  try {
    await checkAnswer(sluice.grpc, 'sluice');
    await checkAnswer(bare.address, 'bare grpc-js');
    await checkStreamAnswer(sluice.grpc, 1024);
    await checkWsAnswer(sluice.http, 1024);
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

    const ms = quick ? 3000 : 10_000;
    figures.grpcStreamRowsPerSec = await grpcStreamRows(sluice.grpc, 1024, 16, ms);
    figures.wsRowsPerSec = await wsRows(sluice.http, 1024, 16, ms);
    table('Streaming throughput, demo-logistic, 1,024-row requests, 16 in flight', ['stream', 'rows/s'],
      [['gRPC ModelStreamInfer', figures.grpcStreamRowsPerSec], ['WebSocket msgpack', figures.wsRowsPerSec]]);
  } finally {
    sluice.child.kill('SIGTERM');
    bare.child.kill('SIGTERM');
  }
  return figures;
}
