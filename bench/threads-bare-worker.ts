/**
 * One I/O thread of bench/threads-bare.ts: the bare servers of bench/bare-grpc.ts and
 * bench/bare-http.ts (same demo-logistic answer, nothing else), on a port shared with the other
 * threads of its group. `grpc`: grpc-js with proto-loader's codec, connections accepted on this
 * thread's SO_REUSEPORT socket and injected (src/net/reuseport.ts). `http`: a uWebSockets.js app
 * on the (reserved, nonzero) port, which uWS opens with SO_REUSEPORT itself. Counts what it
 * serves; on 'count' it reports, on 'stop' it closes and lets the thread end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import uWS from 'uWebSockets.js';
import { packageDefinition, SERVICE_NAME } from '../src/frontend/grpc/definition.js';
import { serveGrpcShared } from '../src/net/reuseport.js';
import { W } from './engine-util.js';

const { kind, host, port } = workerData as { kind: 'grpc' | 'http'; host: string; port: number };
let served = 0;

function logistic(x: ArrayLike<number>, at: number): number {
  let z = 0.25;
  for (let i = 0; i < 100; i++) z += x[at + i]! * W[i]!;
  return 1 / (1 + Math.exp(-z));
}

interface Req {
  model_name: string;
  id: string;
  inputs: Array<{ shape: number[]; contents?: { fp32_contents: number[] } }>;
  raw_input_contents: Buffer[];
}

async function startGrpc(): Promise<() => Promise<void>> {
  const server = new grpc.Server();
  server.addService(packageDefinition[SERVICE_NAME] as unknown as grpc.ServiceDefinition, {
    ModelInfer: (call: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      served++;
      const req = call.request;
      const rows = req.inputs[0]!.shape[0]!;
      const raw = req.raw_input_contents[0];
      const x = raw ? new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) : Float32Array.from(req.inputs[0]!.contents!.fp32_contents);
      const out = new Float32Array(rows);
      for (let r = 0; r < rows; r++) out[r] = logistic(x, r * 100);
      cb(null, {
        model_name: req.model_name, model_version: '1', id: req.id,
        outputs: [{ name: 'probability', datatype: 'FP32', shape: [rows, 1] }],
        raw_output_contents: [Buffer.from(out.buffer)],
      });
    },
    ModelMetadata: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {
      name: 'demo-logistic', versions: ['1'], platform: 'bare',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }], outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }],
    }),
  });
  const listener = await serveGrpcShared(server, host, port);
  return () => listener.close(1000);
}

async function startHttp(): Promise<() => Promise<void>> {
  const app = uWS.App().post('/v2/models/:model/infer', (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    const chunks: Buffer[] = [];
    res.onData((chunk, isLast) => {
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      served++;
      const doc = JSON.parse(Buffer.concat(chunks).toString()) as { inputs: Array<{ data: number[] }> };
      const p = logistic(doc.inputs[0]!.data, 0);
      if (aborted) return;
      res.cork(() => {
        res.writeHeader('Content-Type', 'application/json').end(
          `{"model_name":"demo-logistic","model_version":"1","outputs":[{"name":"probability","datatype":"FP32","shape":[1,1],"data":[${Math.fround(p)}]}]}`);
      });
    });
  });
  const socket = await new Promise<uWS.us_listen_socket | false>((resolve) => app.listen(host, port, resolve));
  if (!socket) throw new Error(`uWebSockets.js could not listen on ${host}:${port}`);
  return async () => {
    uWS.us_listen_socket_close(socket);
    // The v20.30 binary's close() ends the app's open connections too; its types omit it.
    (app as unknown as { close(): void }).close();
  };
}

const stop = kind === 'grpc' ? await startGrpc() : await startHttp();
parentPort!.postMessage({ ready: true });
parentPort!.on('message', async (m: string) => {
  if (m === 'count') parentPort!.postMessage({ served });
  if (m === 'stop') {
    await stop();
    parentPort!.close();
  }
});
