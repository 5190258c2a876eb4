/**
 * The servers the network benchmarks run against, each as a separate process: Sluice itself
 * (`npm start`'s dist/src/main.js, demo-logistic only, a fresh embedded registry) and the bare
 * baselines (bench/bare-http.ts, bench/bare-grpc.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startSluiceProcess, type SluiceProcess } from '../loadtest/sluice-process.js';
import { projectRoot } from '../src/paths.js';

export function startBenchSluice(): Promise<SluiceProcess> {
  return startSluiceProcess({ env: { SLUICE_MODELS: 'demo-logistic' } });
}

/** Starts a bare baseline (built to dist/bench/<script>.js), which prints its port on stdout. */
export async function startBare(script: 'bare-http' | 'bare-grpc'): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [path.join(projectRoot, 'dist/bench', `${script}.js`)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`${script} exited ${code} before printing its port`)));
  });
  return { child, address: `127.0.0.1:${port}` };
}
