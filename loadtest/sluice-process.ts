/**
 * Starting the real server (`npm start`'s dist/src/main.js) as a child process, on ports chosen
 * by the OS, and waiting for it to log that it is serving. One launcher for the network
 * benchmarks (bench/) and the process-level tests (test/integration/): it lives here because
 * both may import the load-test harness, and neither should import the other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hidesInfo } from '../src/log.js';
import { projectRoot } from '../src/paths.js';

export interface SluiceProcessOptions {
  /**
   * Added to this process's environment, over the launcher's defaults (info logging, which the
   * "serving" line needs, port 0 for HTTP and gRPC, and SLUICE_DRAIN_GRACE_MS=0 so SIGTERM stops
   * at once: pass it to test the grace period). Without SLUICE_DATA_DIR the server gets
   * a fresh data directory (embedded registry, first admin key, artifacts), removed when it exits.
   */
  env?: Record<string, string>;
  /** Node/V8 flags before the script (e.g. `--min-semi-space-size=8`), for benchmarks' A/B runs. */
  nodeFlags?: string[];
  /** Every complete log line (JSON) the server writes on stderr, before and after "serving". */
  onLog?: (line: string) => void;
  /**
   * Its own process group: a Ctrl-C in the launcher's terminal does not reach it, so the
   * launcher stops it in its own order (the cluster: balancer first, then replicas).
   */
  detached?: boolean;
  /** Longest the server may take to log "serving" before it is killed and the start fails (default START_TIMEOUT_MS). */
  startTimeoutMs?: number;
}

export interface SluiceProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  http: string;
  /** 127.0.0.1:<port> */
  grpc: string;
  /** Its data directory: the fresh one the launcher made (removed once it exits), or SLUICE_DATA_DIR as given. */
  dataDir: string;
  /** Milliseconds from the spawn to the "serving" line. */
  startMs: number;
  /** Resolves with the exit code once the process has exited (and its fresh data directory is removed). */
  exited: Promise<number | null>;
  /**
   * SIGTERM, then SIGKILL if it has not exited within `killAfterMs` (default 15 s); resolves
   * once it has exited and its fresh data directory is removed. Killing the child without
   * awaiting this left the directory behind whenever the launcher exited first.
   */
  stop(killAfterMs?: number): Promise<number | null>;
}

/** Longest a server may take to log "serving" (a first start compiles and loads every model). */
const START_TIMEOUT_MS = 120_000;

/**
 * Resolves once the server serves; rejects (with its log tail) if it exits before, or has not
 * logged "serving" within the start timeout (then it is killed).
 */
export function startSluiceProcess(o: SluiceProcessOptions = {}): Promise<SluiceProcess> {
  const t0 = Date.now();
  const env = o.env ?? {};
  // Without the "serving" line the launcher would wait forever (a --also=SLUICE_LOG_LEVEL=warn A/B did).
  if (env.SLUICE_LOG_LEVEL !== undefined && hidesInfo(env.SLUICE_LOG_LEVEL)) {
    return Promise.reject(new Error(`SLUICE_LOG_LEVEL=${env.SLUICE_LOG_LEVEL}: the launcher waits for the "sluice: serving" line, logged at info; use info or debug`));
  }
  const freshDataDir = env.SLUICE_DATA_DIR === undefined ? mkdtempSync(path.join(tmpdir(), 'sluice-process-')) : undefined;
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), path.join(projectRoot, 'dist/src/main.js')], {
    env: { ...process.env, SLUICE_LOG_LEVEL: 'info', SLUICE_HTTP_PORT: '0', SLUICE_GRPC_PORT: '0', SLUICE_DRAIN_GRACE_MS: '0', ...(freshDataDir ? { SLUICE_DATA_DIR: freshDataDir } : {}), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: o.detached ?? false,
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    if (freshDataDir) rmSync(freshDataDir, { recursive: true, force: true });
    resolve(code);
  }));
  return new Promise((resolve, reject) => {
    const timeoutMs = o.startTimeoutMs ?? START_TIMEOUT_MS;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sluice did not log "serving" within ${timeoutMs / 1000} s: ${buf.slice(-2000)}`));
    }, timeoutMs);
    timer.unref();
    let buf = '';
    let serving = false;
    let partial = '';
    child.stderr!.on('data', (d: Buffer) => {
      if (o.onLog) {
        const lines = (partial + d.toString()).split('\n');
        partial = lines.pop()!;
        for (const l of lines) o.onLog(l);
      }
      // Keep reading after the "serving" line (a full pipe would stall the server), keeping nothing.
      if (serving) return;
      buf += d.toString();
      // Complete lines only: a chunk may end inside the JSON.
      const line = buf.slice(0, buf.lastIndexOf('\n') + 1).split('\n').find((l) => l.includes('"sluice: serving"'));
      if (!line) return;
      serving = true;
      clearTimeout(timer);
      const j = JSON.parse(line) as { url: string; grpc: string };
      resolve({ child, http: j.url, grpc: j.grpc, dataDir: freshDataDir ?? env.SLUICE_DATA_DIR!, startMs: Date.now() - t0, exited, stop: (killAfterMs = 15_000) => stopChild(child, exited, killAfterMs) });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sluice exited ${code} before serving: ${buf.slice(-2000)}`));
    });
  });
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>, killAfterMs: number): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  try {
    return await exited;
  } finally {
    clearTimeout(killer);
  }
}
