/**
 * The Go open-loop generator (loadtest/grpc-go: grpc-go, raw bytes, latency from each call's
 * scheduled time) as the benchmarks run it: built once per run into a temporary directory, then
 * one process per timed run, its JSON report parsed. A Node grpc-js client cannot offer
 * 10,000 calls/s on this machine (~300 us of CPU per call); this one costs 30-80 us.
 * Used by bench/grpc.ts and bench/threads.ts.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { Summary } from '../loadtest/report.js';
import { projectRoot } from '../src/paths.js';

/**
 * What loadtest/grpc-go prints with -json: the harness's summary fields, under the same names,
 * plus its send-lag percentiles and multi-core CPU (times in ms; cpu.cores = (user+sys)/wall).
 */
export type GoLoadReport = Pick<Summary, 'offeredRate' | 'sent' | 'answered' | 'achievedRate' | 'errors' | 'errorCount' | 'latencyMs'> & {
  sendLagMs: { p50: number; p99: number; max: number };
  cpu: { userS: number; sysS: number; wallS: number; cores: number };
};

/**
 * Builds the Go generator (loadtest/grpc-go) into `dir`; null, with the reason printed, when go
 * is not on PATH or the build fails. -mod=mod lets go fetch the pinned modules (go.sum) on a
 * fresh machine; -buildvcs=false because the binary is throwaway and VCS stamping would run git.
 */
export async function buildGoLoad(dir: string): Promise<string | null> {
  const bin = path.join(dir, 'sluice-grpc-load');
  return new Promise((resolve) => execFile('go', ['build', '-o', bin, '.'], {
    cwd: path.join(projectRoot, 'loadtest', 'grpc-go'),
    env: { ...process.env, GOFLAGS: '-mod=mod -buildvcs=false' },
  }, (e, _stdout, stderr) => {
    if (!e) return resolve(bin);
    console.log((e as NodeJS.ErrnoException).code === 'ENOENT'
      ? '\ngo is not on PATH: the Go-generator gRPC figure (loadtest/grpc-go) is skipped'
      : `\ngo build of loadtest/grpc-go failed, the Go-generator gRPC figure is skipped:\n${stderr || e.message}`);
    resolve(null);
  }));
}

/**
 * One open-loop run of the Go generator over `connections` separate HTTP/2 connections (a server
 * that spreads connections over threads needs several); rejects with its stderr if it fails.
 */
export function goLoad(bin: string, address: string, requestFile: string, rate: number, durationS: number, connections: number): Promise<GoLoadReport> {
  const args = ['-address', address, '-request', requestFile, '-rate', String(rate), '-duration', String(durationS), '-connections', String(connections), '-json'];
  return new Promise((resolve, reject) => execFile(bin, args, { timeout: (durationS + 60) * 1000 }, (e, stdout, stderr) => {
    if (e) reject(new Error(`sluice-grpc-load ${args.join(' ')} failed: ${e.message}\n${stderr.slice(-2000)}`));
    else resolve(JSON.parse(stdout) as GoLoadReport);
  }));
}

export function describeGoLoad(r: GoLoadReport): string {
  const f = (x: number) => x.toFixed(2);
  const byCode = Object.entries(r.errors).map(([c, n]) => `${c} ${n}`).join(', ');
  const l = r.latencyMs;
  return `  achieved ${r.achievedRate.toFixed(0)} calls/s (${r.answered} answered of ${r.sent} sent), ${r.errorCount} errors${byCode ? ` (${byCode})` : ''}\n`
    + `  latency from scheduled send, ms: p50 ${f(l.p50)}  p90 ${f(l.p90)}  p99 ${f(l.p99)}  p99.9 ${f(l.p999)}  max ${f(l.max)}\n`
    + `  generator: send lag p99 ${f(r.sendLagMs.p99)} ms, CPU ${f(r.cpu.cores)} cores (user ${r.cpu.userS.toFixed(1)} s + sys ${r.cpu.sysS.toFixed(1)} s over ${r.cpu.wallS.toFixed(1)} s)`
    + (r.sendLagMs.p99 > 1 ? `\n  (send lag p99 > 1 ms: the generator ran late, and that lateness is inside the latencies above)` : '');
}
