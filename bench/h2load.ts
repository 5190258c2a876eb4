/**
 * Closed-loop capacity with h2load (Debian's nghttp2-client), for the I/O-thread benchmarks
 * (threads-bare.ts, threads.ts), which time servers that spread connections over threads:
 *  - gRPC ModelInfer, single row: 16 connections x 4 streams (the kernel hashes connections to
 *    threads, so fewer connections split unevenly: 8 split 26/74% in one run);
 *  - HTTP single-row JSON infer: h2load --h1, 32 connections, one request at a time each.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { framed, jsonBody } from './single-row.js';
import { check } from './util.js';

export type Protocol = 'grpc' | 'http';

export async function hasH2load(): Promise<boolean> {
  return new Promise((resolve) => execFile('h2load', ['--version'], (e) => resolve(!e)));
}

/** Writes what h2load posts: the framed gRPC message to `<base>-grpc.bin`, the JSON to `<base>-http.json`. */
export function writeH2loadBodies(base: string, grpcMessage: Buffer): Record<Protocol, string> {
  const files = { grpc: `${base}-grpc.bin`, http: `${base}-http.json` };
  writeFileSync(files.grpc, framed(grpcMessage));
  writeFileSync(files.http, jsonBody);
  return files;
}

/** Seconds of h2load's warm-up before its measured ones (its counts leave it out; a server's CPU time does not). */
export const H2LOAD_WARM_UP_S = 1;

/**
 * One closed-loop run of `seconds` after H2LOAD_WARM_UP_S of warm-up against `address` (host:port) and `model` (HTTP); returns
 * requests/s. Every request must succeed, or the benchmark stops (`label` names the server).
 * h2load fails non-2xx answers, but a gRPC error (OVERLOADED included) is an HTTP 200 with
 * grpc-status in the trailers, which it counts as a success: read the server's own error
 * counters around a gRPC run where the server can refuse (bench/threads.ts does).
 */
export async function h2loadRate(protocol: Protocol, address: string, bodyFile: string, seconds: number, label: string, model = 'demo-logistic'): Promise<number> {
  const args = protocol === 'grpc'
    ? ['-c', '16', '-m', '4', '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://${address}/inference.GRPCInferenceService/ModelInfer`]
    : ['--h1', '-c', '32', '-m', '1', '-H', 'content-type: application/json', `http://${address}/v2/models/${model}/infer`];
  const out = await new Promise<string>((resolve, reject) => execFile('h2load', ['-D', String(seconds), '--warm-up-time', String(H2LOAD_WARM_UP_S), '-d', bodyFile, ...args],
    { maxBuffer: 1 << 20 }, (e, stdout) => (e ? reject(e) : resolve(stdout))));
  const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  check(!!m && m[5] === '0' && m[6] === '0' && Number(m[4]) > 0, `h2load against ${label} (${protocol}): failures\n${out}`);
  return Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out)?.[1]);
}
