/**
 * Starting the real server (`npm start`'s dist/src/main.js) as a child process for the network
 * benchmarks: a fresh embedded registry, ports chosen by the OS, demo-logistic only. Resolves
 * with its HTTP URL and gRPC address once it logs that it is serving.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { projectRoot } from '../src/paths.js';

export interface SluiceProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  http: string;
  /** 127.0.0.1:<port> */
  grpc: string;
}

export function startSluiceProcess(): Promise<SluiceProcess> {
  const child = spawn(process.execPath, [path.join(projectRoot, 'dist/src/main.js')], {
    env: { ...process.env, SLUICE_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'sluice-bench-')), SLUICE_HTTP_PORT: '0', SLUICE_GRPC_PORT: '0', SLUICE_LOG_LEVEL: 'info', SLUICE_MODELS: 'demo-logistic' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.includes('"sluice: serving"'));
      if (line) {
        const j = JSON.parse(line) as { url: string; grpc: string };
        resolve({ child, http: j.url, grpc: j.grpc });
      }
    });
    child.once('exit', (c) => reject(new Error(`sluice exited ${c}: ${buf}`)));
  });
}
