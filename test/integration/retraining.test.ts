/**
 * Retraining triggers on a whole server (PGlite) with a real webhook receiver on 127.0.0.1:
 * a manual request, one from an alert firing on a failing version (performance; not repeated
 * within the cooldown), one from a due schedule (moved on by whole periods); every request is a
 * row that cannot be changed, and reaches the webhook.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, registerBody, startFull, until, type FullServer } from '../helpers/server.js';

describe('retraining triggers', () => {
  let s: FullServer;
  let receiver: Server;
  const received: Array<{ retraining_request: { id: number; model: string; trigger: string; reason: string; details: Record<string, unknown> } }> = [];
  const call = (method: string, p: string, body?: unknown) => admin(s, s.adminKey, method, p, body);

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    s = await startFull({ allowFixtureModels: true, alertIntervalMs: 100, retrainIntervalMs: 100, retrainWebhooks: [`http://127.0.0.1:${port}/hook`] });
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
  afterAll(async () => {
    await s?.close();
    await new Promise((r) => receiver?.close(r));
  });

  it('records a manual request and sends it; refuses bad input', async () => {
    const r = await call('POST', '/v1/admin/models/demo-logistic/retrain', { reason: 'new data landed' });
    expect(r).toMatchObject({ status: 200, json: { model: 'demo-logistic', trigger: 'manual', reason: 'new data landed', actor: expect.any(String) } });
    await until(() => received.some((b) => b.retraining_request.id === r.json.id), 10_000);
    expect(await call('POST', '/v1/admin/models/nope/retrain', {})).toMatchObject({ status: 404, json: { code: 'MODEL_NOT_FOUND' } });
    expect(await call('POST', '/v1/admin/models/demo-logistic/retrain', { why: 1 })).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT' } });
    expect(await call('PUT', '/v1/admin/models/demo-logistic/retrain/schedule', { every_s: 5 })).toMatchObject({ status: 400, json: { code: 'INVALID_ARGUMENT' } });
    await expect(s.registry.db.query("UPDATE retraining_requests SET reason = 'x'")).rejects.toThrow(/append-only/);
  });

  it('asks for retraining when an alert fires on a failing version, once within the cooldown', async () => {
    expect((await call('POST', '/v1/admin/alerts/rules', { name: 'flaky-failing', source: 'error_rate', labels: { model: 'flaky' }, operator: '>', threshold: 0.5, for_ms: 0 })).status).toBe(200);
    for (let i = 0; i < 10; i++) {
      await fetch(`${s.url}/v2/models/flaky/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [7, 7, 7, 7] }] }) });
    }
    await until(async () => ((await call('GET', '/v1/admin/retraining?model=flaky')).json as unknown[]).length > 0, 10_000);
    const [req] = (await call('GET', '/v1/admin/retraining?model=flaky')).json as Array<Record<string, any>>;
    expect(req).toMatchObject({ model: 'flaky', version: '1', trigger: 'performance', details: { alert: 'flaky-failing', source: 'error_rate', value: 1 } });
    await until(() => received.some((b) => b.retraining_request.id === req!.id), 10_000);
    // The built-in error-rate bands fire too, in time; within the cooldown no second request.
    await new Promise((r) => setTimeout(r, 1000));
    expect(((await call('GET', '/v1/admin/retraining?model=flaky')).json as unknown[]).length).toBe(1);
  });

  it('fires a due schedule once and moves it on by whole periods', async () => {
    expect(await call('PUT', '/v1/admin/models/demo-logistic/retrain/schedule', { every_s: 3600 })).toMatchObject({ status: 200, json: { model: 'demo-logistic', every_s: 3600 } });
    // Three and a half periods overdue (a replica that was down): one request, next in half a period.
    await s.registry.db.query("UPDATE retraining_schedules SET next_at = clock_timestamp() - interval '3.5 hours' WHERE model = 'demo-logistic'");
    await until(async () => ((await call('GET', '/v1/admin/retraining?model=demo-logistic')).json as Array<{ trigger: string }>).some((r) => r.trigger === 'schedule'), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const schedule = ((await call('GET', '/v1/admin/retraining?model=demo-logistic')).json as Array<{ trigger: string }>).filter((r) => r.trigger === 'schedule');
    expect(schedule).toHaveLength(1);
    const [row] = await s.registry.db.query<{ left: number }>("SELECT extract(epoch FROM next_at - clock_timestamp())::float8 AS left FROM retraining_schedules WHERE model = 'demo-logistic'");
    expect(row!.left).toBeGreaterThan(1700);
    expect(row!.left).toBeLessThan(1801);
    expect(await call('DELETE', '/v1/admin/models/demo-logistic/retrain/schedule')).toMatchObject({ status: 200, json: { cleared: true } });
  });
});
