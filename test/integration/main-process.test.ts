import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';

/** Starts `node dist/src/main.js` (what `npm start` runs) and waits for its "serving" line. */
function start(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; ms: number; exited: Promise<number | null> }> {
  const t0 = Date.now();
  // A fresh data directory: the embedded registry, its first admin key and the artifacts.
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sluice-main-'));
  const child = spawn(process.execPath, [path.join(projectRoot, 'dist/src/main.js')], {
    env: { ...process.env, SLUICE_LOG_LEVEL: 'info', SLUICE_HTTP_PORT: '0', SLUICE_GRPC_PORT: '0', SLUICE_DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (!line.includes('"sluice: serving"')) continue;
        resolve({ child, url: (JSON.parse(line) as { url: string }).url, ms: Date.now() - t0, exited });
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before serving: ${buf}`)));
  });
}

describe('npm start (dist/src/main.js)', () => {
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo(true);
    await writeFixture(repo.root, 'slow', '1', { op: 'sum', delay_us: 600_000 }, { maxBatch: 1 });
  });
  afterAll(() => repo.cleanup());

  it('serves the bundled demo models on the embedded defaults, ready within seconds', async () => {
    const { child, url, ms, exited } = await start({});
    try {
      const ready = await fetch(`${url}/v2/health/ready`);
      expect(ready.status).toBe(200);
      const index = (await (await fetch(`${url}/v2/repository/index`)).json()) as Array<{ name: string; state: string }>;
      expect(index.map((m) => `${m.name}:${m.state}`)).toEqual(['demo-logistic:READY', 'demo-onnx:READY']);
      expect(ms).toBeLessThan(20_000);
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it('on SIGTERM turns not-ready first, finishes in-flight requests, and exits 0', async () => {
    const { child, url, exited } = await start({ SLUICE_MODEL_REPOSITORY: repo.root, SLUICE_ALLOW_FIXTURE_MODELS: 'true' });
    // One keep-alive connection, opened before the signal, to ask for readiness during the drain.
    const dispatcher = new Agent({ connections: 1, pipelining: 0 });
    const probe = new Agent({ connections: 1 });
    expect((await fetch(`${url}/v2/health/ready`, { dispatcher: probe })).status).toBe(200);
    const slow = fetch(`${url}/v2/models/slow/infer`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    const during = await fetch(`${url}/v2/health/ready`, { dispatcher: probe });
    expect(during.status).toBe(503);
    expect(await during.json()).toMatchObject({ code: 'SHUTTING_DOWN' });
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ outputs: [{ data: [10] }] });
    expect(await exited).toBe(0);
    await dispatcher.close();
    await probe.close();
  });
});
