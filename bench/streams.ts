/**
 * Streaming throughput with 1,024-row requests, closed loop with 16 requests in flight: gRPC
 * ModelStreamInfer and the WebSocket stream (/v2/stream, msgpack), against Sluice in its own
 * process. Each stream's answer to the very request it times is checked first, every row against
 * demo-logistic's formula. `npm run bench -- streams [--quick]`.
 */
import { Packr } from 'msgpackr';
import { WebSocket } from 'ws';
import { buildGrpcTarget, rawClient, streamAnswer } from '../loadtest/grpc-load.js';
import { check, table } from './util.js';
import { startBenchSluice } from './server-process.js';
import { features } from './engine-util.js';
import { checkRows, stockClient } from './grpc.js';

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

/**
 * The load generator's WebSocket: ws with an all-zero masking key, which ws recognises and then
 * skips masking (its JS masking of 400 kB frames, like undici's, capped the figure at ~400k rows/s
 * with the client, not Sluice, at 100% CPU). RFC 6455 wants unpredictable keys to protect
 * browsers' intermediaries; the server's work is unchanged, as uWS unmasks every byte alike.
 */
async function openWs(httpUrl: string): Promise<WebSocket> {
  const ws = new WebSocket(httpUrl.replace(/^http/, 'ws') + '/v2/stream', { perMessageDeflate: false, generateMask: (mask) => mask.fill(0) });
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

export async function runStreams(opts: { quick?: boolean } = {}): Promise<Record<string, number>> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const sluice = await startBenchSluice();
  const figures: Record<string, number> = {};
  try {
    await checkStreamAnswer(sluice.grpc, 1024);
    await checkWsAnswer(sluice.http, 1024);
    const ms = quick ? 3000 : 10_000;
    figures.grpcStreamRowsPerSec = await grpcStreamRows(sluice.grpc, 1024, 16, ms);
    figures.wsRowsPerSec = await wsRows(sluice.http, 1024, 16, ms);
    table('Streaming throughput, demo-logistic, 1,024-row requests, 16 in flight', ['stream', 'rows/s'],
      [['gRPC ModelStreamInfer', figures.grpcStreamRowsPerSec], ['WebSocket msgpack', figures.wsRowsPerSec]]);
  } finally {
    await sluice.stop();
  }
  return figures;
}
