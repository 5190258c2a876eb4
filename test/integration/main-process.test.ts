import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';

describe('npm start (dist/src/main.js)', () => {
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo(true);
    await writeFixture(repo.root, 'slow', '1', { op: 'sum', delay_us: 600_000 }, { maxBatch: 1 });
  });
  afterAll(() => repo.cleanup());

  it('serves the bundled demo models on the embedded defaults, ready within seconds', async () => {
    const { child, http: url, startMs: ms, exited } = await startSluiceProcess();
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
    const { child, http: url, exited } = await startSluiceProcess({ env: { SLUICE_MODEL_REPOSITORY: repo.root, SLUICE_ALLOW_FIXTURE_MODELS: 'true' } });
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
