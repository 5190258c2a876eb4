/**
 * A whole server (registry, engine, HTTP, gRPC) in this process, on port 0, for tests; and the
 * engine with its HTTP front end on a model repository of the test's own.
 */
import { randomBytes } from 'node:crypto';
import type { Config } from '../../src/config/index.js';
import type { HttpServerOptions } from '../../src/frontend/http/server.js';
import { serve, type Running } from '../../src/serve.js';
import { startServer, type TestServer } from './http.js';
import { tempRepo } from './repo.js';
import { eventually, tempDir } from './services.js';

export interface FullServer extends Running {
  url: string;
  adminKey: string;
  close(): Promise<void>;
}

export async function startFull(overrides: Partial<Config> = {}): Promise<FullServer> {
  const tmp = await tempDir('sluice-full-');
  const adminKey = `sk_test_admin_${randomBytes(24).toString('hex')}`;
  const running = await serve({ dataDir: tmp.dir, httpPort: 0, grpcPort: 0, workers: 1, adminKey, reconcileMs: 60_000, ...overrides });
  return {
    ...running,
    url: `http://127.0.0.1:${running.httpPort}`,
    adminKey,
    async close() {
      await running.stop();
      await tmp.cleanup();
    },
  };
}

export async function admin(s: { url: string }, key: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> {
  const res = await fetch(`${s.url}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined && !(body instanceof Uint8Array) ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, json };
}

/** The register body: JSON header then the payload. */
export function registerBody(head: Record<string, unknown>, payload: Uint8Array): { body: Uint8Array; headers: Record<string, string> } {
  const h = Buffer.from(JSON.stringify(head));
  return { body: Buffer.concat([h, payload]), headers: { 'content-type': 'application/octet-stream', 'register-header-length': String(h.byteLength) } };
}

/** A demo-logistic manifest (without payload hash) and weights scaled by `scale`. */
export function logisticVersion(scale: number): { manifest: Record<string, unknown>; payload: Uint8Array } {
  const w = Array.from({ length: 100 }, (_, i) => (((i % 7) - 3) / 10) * scale);
  return {
    manifest: {
      name: 'demo-logistic', kind: 'logistic', max_batch_size: 1024,
      signature: { inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 100] }], outputs: [{ name: 'probability', datatype: 'FP32', shape: [-1, 1] }] },
      payload: { file: 'weights.json' },
    },
    payload: Buffer.from(JSON.stringify({ weights: [w], bias: [0.25] })),
  };
}

/** Polls `cond` until it holds, with eventually's rules (an error is retried until `ms` pass). */
export async function until(cond: () => Promise<boolean> | boolean, ms = 10_000, step = 10): Promise<void> {
  await eventually(async () => ((await cond()) ? true : undefined), ms, 'the condition', step);
}

/**
 * startServer on a copy of the bundled model repository, to which `prepare` may first add
 * versions and fixtures; close() also removes the copy.
 */
export async function startRepoServer(config: Partial<Config>, prepare?: (root: string) => Promise<void>, opts?: HttpServerOptions): Promise<TestServer> {
  const repo = await tempRepo(true);
  try {
    await prepare?.(repo.root);
    const s = await startServer({ modelRepository: repo.root, ...config }, opts);
    return {
      ...s,
      async close() {
        await s.close();
        await repo.cleanup();
      },
    };
  } catch (e) {
    await repo.cleanup();
    throw e;
  }
}
