/**
 * What a scenario gets: Sluice child processes (loadtest/sluice-process.ts: dist/src/main.js),
 * private PostgreSQL and S3 servers, temporary directories, background load, admin and infer
 * calls, and a clean-up that undoes all of it (LIFO) however the scenario ends.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { refusalsByReason } from '../bench/util.js';
import { startSluiceProcess, type SluiceProcess } from '../loadtest/sluice-process.js';
import { startLoad, type LoadHandle, type LoadSpec } from './load.js';
import { startPostgres, startS3, type PrivatePostgres, type PrivateS3 } from './services.js';

export interface SluiceOptions {
  /** Model repository to import at start (SLUICE_MODEL_REPOSITORY). */
  repo: string;
  /** Kept across restarts when given; else a fresh one, removed at exit. */
  dataDir?: string;
  /** Fixed ports (for a restart on the same address); default: any free port. */
  httpPort?: number;
  workers?: number;
  env?: Record<string, string>;
}

export interface SluiceHandle {
  http: string;
  pid: number;
  proc: SluiceProcess;
  /** Log lines (JSON) so far. */
  logs: string[];
  exited: Promise<number | null>;
  /** Resident memory now, MB (from /proc). */
  rssMb(): Promise<number>;
  /** Resolves with the first log line (already written or to come) matching. */
  waitLog(match: RegExp, timeoutMs: number): Promise<string>;
  /** Admission refusals so far by reason (from /metrics, summed over I/O threads), as `reason n, ...` or `none`. */
  refusals(): Promise<string>;
}

export interface HttpAnswer {
  status: number;
  /** Parsed JSON body (or the text when not JSON); scenarios read fields like body?.code. */
  body: any;
  retryAfter: string | null;
  ms: number;
}

export class ChaosContext {
  /** Installed as SLUICE_ADMIN_KEY in every server the scenario starts. */
  readonly adminKey = `sk_chaos_${randomBytes(24).toString('hex')}`;
  private readonly cleanups: Array<() => Promise<unknown>> = [];

  constructor(readonly log: (msg: string) => void = (m) => process.stderr.write(`  .. ${m}\n`)) {}

  /** Milliseconds on the clock the load's send times use. */
  now(): number {
    return Number(process.hrtime.bigint()) / 1e6;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  /** Runs `fn` at clean-up (last registered, first run). */
  defer(fn: () => Promise<unknown>): void {
    this.cleanups.push(fn);
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch (e) {
        this.log(`clean-up: ${(e as Error).message}`);
      }
    }
    this.cleanups.length = 0;
  }

  async tmpDir(prefix = 'sluice-chaos-'): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), prefix));
    this.defer(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async freePort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  async sluice(o: SluiceOptions): Promise<SluiceHandle> {
    const logs: string[] = [];
    const waiters: Array<{ match: RegExp; resolve: (l: string) => void }> = [];
    const proc = await startSluiceProcess({
      env: {
        SLUICE_MODEL_REPOSITORY: o.repo,
        SLUICE_ALLOW_FIXTURE_MODELS: 'true',
        SLUICE_ADMIN_KEY: this.adminKey,
        SLUICE_WORKERS: String(o.workers ?? 2),
        ...(o.dataDir ? { SLUICE_DATA_DIR: o.dataDir } : {}),
        ...(o.httpPort ? { SLUICE_HTTP_PORT: String(o.httpPort) } : {}),
        ...o.env,
      },
      onLog: (line) => {
        if (logs.length > 5000) logs.splice(0, 1000);
        logs.push(line);
        for (let i = waiters.length - 1; i >= 0; i--) {
          if (waiters[i]!.match.test(line)) waiters.splice(i, 1)[0]!.resolve(line);
        }
      },
    });
    const child = proc.child;
    this.defer(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await proc.exited;
    });
    return {
      http: proc.http,
      pid: child.pid!,
      proc,
      logs,
      exited: proc.exited,
      rssMb: async () => {
        const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
        return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
      },
      refusals: async () => {
        const res = await fetch(`${proc.http}/metrics`);
        const byReason = [...refusalsByReason(await res.text())].filter(([, n]) => n > 0);
        return byReason.length === 0 ? 'none' : byReason.map(([r, n]) => `${r} ${n}`).join(', ');
      },
      waitLog: (match, timeoutMs) => {
        const seen = logs.find((l) => match.test(l));
        if (seen) return Promise.resolve(seen);
        return new Promise((resolve, reject) => {
          const w = { match, resolve: (l: string) => { clearTimeout(timer); resolve(l); } };
          const timer = setTimeout(() => {
            waiters.splice(waiters.indexOf(w), 1);
            reject(new Error(`no log line matching ${match} within ${timeoutMs} ms`));
          }, timeoutMs);
          waiters.push(w);
        });
      },
    };
  }

  async postgres(): Promise<PrivatePostgres> {
    const pg = await startPostgres(await this.tmpDir('sluice-chaos-pg-'));
    this.defer(() => pg.stop());
    return pg;
  }

  async s3(): Promise<PrivateS3> {
    const s3 = await startS3(await this.tmpDir('sluice-chaos-s3-'));
    this.defer(() => s3.stop());
    return s3;
  }

  load(spec: LoadSpec): LoadHandle {
    return startLoad(spec);
  }

  async http(url: string, method: string, body?: unknown, headers: Record<string, string> = {}, timeoutMs = 30_000): Promise<HttpAnswer> {
    const t0 = this.now();
    const res = await fetch(url, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch { /* not JSON */ }
    return { status: res.status, body: parsed, retryAfter: res.headers.get('retry-after'), ms: this.now() - t0 };
  }

  /** An admin API call with the scenario's admin key. */
  admin(base: string, method: string, route: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.http(`${base}${route}`, method, body, { authorization: `Bearer ${this.adminKey}`, ...headers });
  }

  /** One single-row FP32 inference. */
  infer(base: string, model: string, inputName: string, row: number[], headers: Record<string, string> = {}): Promise<HttpAnswer> {
    return this.http(`${base}/v2/models/${encodeURIComponent(model)}/infer`, 'POST',
      { inputs: [{ name: inputName, datatype: 'FP32', shape: [1, row.length], data: row }] }, headers);
  }

  /** Polls `probe` until it returns a value; resolves with it and the ms waited, or rejects after timeoutMs. */
  async until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<{ value: T; ms: number }> {
    const t0 = this.now();
    for (;;) {
      let v: T | undefined;
      try {
        v = await probe();
      } catch { /* not yet */ }
      if (v !== undefined) return { value: v, ms: this.now() - t0 };
      if (this.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await this.sleep(everyMs);
    }
  }
}
