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
import { serveGrpcShared } from '../src/net/reuseport.js';
import { bareHandlers, bareService } from './bare-grpc-service.js';
import { demoAnswer } from './engine-util.js';

const { kind, host, port } = workerData as { kind: 'grpc' | 'http'; host: string; port: number };
let served = 0;

async function startGrpc(): Promise<() => Promise<void>> {
  const server = new grpc.Server();
  server.addService(bareService, bareHandlers(() => served++));
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
      const p = demoAnswer(doc.inputs[0]!.data);
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
