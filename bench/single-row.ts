/**
 * The single-row demo-logistic request in each form the network benchmarks send it (the gRPC
 * message, h2load's framed copy of it, the JSON body), and one answer per fresh connection,
 * checked against the formula. Fresh connections because servers that share a port between
 * threads are handed whole connections by the kernel: checking through a new one each time is
 * how a check reaches every thread. Used by bench/grpc.ts, threads-bare.ts and threads.ts.
 */
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { buildGrpcTarget } from '../loadtest/grpc-load.js';
import { packageDefinition } from '../src/frontend/grpc/definition.js';
import { demoAnswer } from './engine-util.js';
import { check } from './util.js';

const pkg = grpc.loadPackageDefinition(packageDefinition) as any;

/** The features of the checked requests (the timed ones are buildGrpcTarget's or jsonBody). */
export const checkedFeatures = Array.from({ length: 100 }, (_, i) => Math.fround(Math.sin(i)));

/** Single-row JSON infer body, what the HTTP capacity figures send. */
export const jsonBody = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: checkedFeatures }] });

/**
 * One serialized single-row demo-logistic ModelInferRequest (no gRPC message prefix), as the
 * load-test harness builds it from the server's own metadata: what the Go generator sends.
 */
export async function singleRequest(address: string): Promise<Buffer> {
  const t = await buildGrpcTarget({ url: address, model: 'demo-logistic', batch: 1, stream: false }, 1);
  return t.requests[0]!;
}

/** The message with its 5-byte gRPC prefix (uncompressed, length), what h2load posts. */
export function framed(msg: Buffer): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

/** demo-logistic's answer to checkedFeatures over a new gRPC connection to `address` (host:port). */
export async function grpcAnswer(address: string): Promise<number> {
  const client = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  try {
    const r = await new Promise<{ raw_output_contents: Buffer[] }>((resolve, reject) => client.ModelInfer({
      model_name: 'demo-logistic', id: 'check', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100] }],
      raw_input_contents: [Buffer.from(Float32Array.from(checkedFeatures).buffer)],
    }, (e: Error | null, v: never) => (e ? reject(e) : resolve(v))));
    return r.raw_output_contents[0]!.readFloatLE(0);
  } finally {
    client.close();
  }
}

/** demo-logistic's answer to jsonBody over a new HTTP/1.1 connection to `address` (host:port). */
export async function httpAnswer(address: string): Promise<number> {
  const [host, port] = address.split(':') as [string, string];
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method: 'POST', path: '/v2/models/demo-logistic/infer', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d)).on('end', () => resolve(s));
    });
    req.on('error', reject).end(jsonBody);
  });
  return (JSON.parse(body) as { outputs: Array<{ data: number[] }> }).outputs[0]!.data[0]!;
}

/** One checked answer over a new connection of `kind`; exits the benchmark if it is wrong. */
export async function checkFreshAnswer(kind: 'grpc' | 'http', address: string, label: string): Promise<void> {
  const got = kind === 'grpc' ? await grpcAnswer(address) : await httpAnswer(address);
  check(Math.abs(got - demoAnswer(checkedFeatures)) < 1e-6, `${label} (${kind}) answered ${got}, expected ${demoAnswer(checkedFeatures)}`);
}
