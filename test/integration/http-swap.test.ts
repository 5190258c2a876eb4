import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, type TestServer } from '../helpers/http.js';
import { randomF32 } from '../helpers/random.js';
import { demoWeights, logistic, writeLinear } from '../helpers/repo.js';
import { startRepoServer } from '../helpers/server.js';

const w = demoWeights();
const scaleOf = (v: string) => Number(v);

describe('HTTP: loading new versions through the repository API under traffic', () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startRepoServer({ workers: 1, startupModels: ['demo-logistic'] }, async (root) => {
      // Versions 2 and 3 of demo-logistic scale the weights, so each answer shows its version.
      await writeLinear(root, 'demo-logistic', '2', { scale: 2 });
      await writeLinear(root, 'demo-logistic', '3', { scale: 3 });
    });
    await s.engine.load('demo-logistic', { version: '1' });
  });
  afterAll(() => s.close());

  it('answers thousands of requests with 0 failures, each from the version it names', async () => {
    const url = `${s.url}/v2/models/demo-logistic/infer`;
    let running = true;
    const failures: string[] = [];
    const seen = new Set<string>();
    let done = 0;
    const client = async (k: number) => {
      for (let i = 0; running || i < 10; i++) {
        const x = randomF32(100, k * 100_000 + i);
        const r = await postJson(url, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from(x) }] });
        if (r.status !== 200) {
          failures.push(`${r.status} ${JSON.stringify(r.json)}`);
          continue;
        }
        const v = r.json.model_version as string;
        seen.add(v);
        const want = logistic(x, w.map((q) => q * scaleOf(v)), 0.25);
        if (Math.abs(r.json.outputs[0].data[0] - want) > 1e-5) failures.push(`version ${v} answered ${r.json.outputs[0].data[0]}, expected ${want}`);
        done++;
      }
    };
    const clients = Array.from({ length: 8 }, (_, k) => client(k));
    for (const v of ['2', '3', '1', '3', '2', '1', '2', '3']) {
      await new Promise((r) => setTimeout(r, 60));
      const r = await postJson(`${s.url}/v2/repository/models/demo-logistic/load`, { parameters: { version: v } });
      expect(r.json).toEqual({ model_name: 'demo-logistic', model_version: v });
    }
    while (done < 3000) await new Promise((r) => setTimeout(r, 20));
    running = false;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(done).toBeGreaterThanOrEqual(3000);
    expect([...seen].sort()).toEqual(['1', '2', '3']);
  });
});
