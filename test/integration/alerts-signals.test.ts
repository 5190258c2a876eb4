/**
 * Alerts from the server's own figures: a rule on `error_rate` of a model fires while its
 * version fails requests (this replica's window), expanded to the version served, and stays
 * quiet for a model that does not fail; the built-in rules expand over served versions too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, registerBody, startFull, until, type FullServer } from '../helpers/server.js';

describe('alerts from server signals', () => {
  let s: FullServer;
  const call = (method: string, p: string, body?: unknown) => admin(s, s.adminKey, method, p, body);

  beforeAll(async () => {
    s = await startFull({ ioThreads: 2, allowFixtureModels: true, alertIntervalMs: 100 });
    const reg = registerBody({
      version: '1',
      manifest: {
        name: 'flaky', kind: 'fixture', max_batch_size: 8, dispatch: 'inline',
        signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] },
        payload: { file: 'fixture.json' }, parameters: { op: 'sum', error_on: 7 },
      },
    }, Buffer.from('{}'));
    expect((await admin(s, s.adminKey, 'POST', '/v1/admin/models/flaky/versions', reg.body, reg.headers)).status).toBe(200);
    expect((await call('POST', '/v1/admin/models/flaky/promote', { version: '1' })).status).toBe(200);
    await until(async () => (await fetch(`${s.url}/v2/models/flaky/ready`)).status === 200, 20_000);
  }, 60_000);
  afterAll(async () => s?.close());

  it('fires for the failing version only, with its model and version as labels', async () => {
    for (const model of ['flaky', 'demo-logistic']) {
      expect((await call('POST', '/v1/admin/alerts/rules', { name: `${model}-failing`, source: 'error_rate', labels: { model }, operator: '>', threshold: 0.5, for_ms: 0, severity: 'critical' })).status).toBe(200);
    }
    const infer = (model: string, v: number, cols: number) => fetch(`${s.url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: model === 'flaky' ? 'x' : 'features', datatype: 'FP32', shape: [1, cols], data: new Array(cols).fill(v) }] }) });
    for (let i = 0; i < 20; i++) {
      expect((await infer('flaky', 7, 4)).status).toBe(500);
      expect((await infer('demo-logistic', 0.1, 100)).status).toBe(200);
    }
    await until(async () => ((await call('GET', '/v1/admin/alerts?state=firing')).json as Array<{ rule: string }>).some((a) => a.rule === 'flaky-failing'), 10_000);
    const firing = (await call('GET', '/v1/admin/alerts?state=firing')).json as Array<{ rule: string; labels: Record<string, string> }>;
    expect(firing.find((a) => a.rule === 'flaky-failing')!.labels).toEqual({ model: 'flaky', version: '1' });
    expect(firing.some((a) => a.rule === 'demo-logistic-failing')).toBe(false);
    // The built-in emergency band (> 25% for 10 s) is pending for the failing version.
    await until(async () => ((await call('GET', '/v1/admin/alerts?state=pending')).json as Array<{ rule: string; labels: Record<string, string> }>).some((a) => a.rule === 'error-rate-emergency' && a.labels.model === 'flaky'), 10_000);
  }, 60_000);
});
