/**
 * Drift monitoring on a whole server (serve(), two I/O threads, PGlite, 127.0.0.1 port 0), every
 * request sampled (SLUICE_DRIFT_SAMPLE_RATE 1): demo-logistic requests over 16 connections, so
 * both threads answer and both threads' samples reach the main thread's monitor. Rows uniform in
 * [-1, 1] form the reference and a first window that must not be drifted; then feature 5 moves
 * up by 1 and the drift API and /metrics must name it, and it alone among the features.
 */
import { Pool } from 'undici';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startFull, type FullServer } from '../helpers/server.js';
import { mulberry32 } from '../helpers/random.js';

const REFERENCE = 300;
const SHIFTED = 5;

describe('drift monitoring (two I/O threads, every request sampled)', () => {
  let s: FullServer;
  let pool: Pool;
  let sent = 0;
  let version = '';
  const random = mulberry32(2026);

  /** `n` single-row requests, 32 in flight; feature SHIFTED gets `shift` added. */
  async function send(n: number, shift: number): Promise<void> {
    let left = n;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (left > 0) {
        left--;
        const x = Array.from({ length: 100 }, (_, j) => Math.fround(random() * 2 - 1 + (j === SHIFTED ? shift : 0)));
        const r = await pool.request({
          path: '/v2/models/demo-logistic/infer', method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: x }] }),
        });
        const body = (await r.body.json()) as { model_version?: string };
        expect(r.statusCode).toBe(200);
        version = body.model_version!;
        sent++;
      }
    }));
  }

  const drift = () => admin(s, s.adminKey, 'GET', '/v1/admin/models/demo-logistic/drift');

  beforeAll(async () => {
    s = await startFull({ ioThreads: 2, workers: 1, admission: false, startupModels: ['demo-logistic'], driftSampleRate: 1, driftReferenceRows: REFERENCE, driftWindowMs: 600_000 });
    pool = new Pool(s.url, { connections: 16 });
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
    await s?.close();
  });

  it('builds the reference from the first sampled rows, and a stationary window is not drifted', async () => {
    await send(REFERENCE + 400, 0);
    const perThread = (await s.engine.snapshots()).map((t) => t.versions.find((v) => v.model === 'demo-logistic')?.success ?? 0);
    expect(perThread).toHaveLength(2);
    expect(perThread.every((n) => n > 0)).toBe(true);
    const r = await drift();
    expect(r.status).toBe(200);
    expect(r.json.model).toBe('demo-logistic');
    const v = r.json.versions.find((x: { version: string }) => x.version === version);
    // Every request of both threads was sampled and collected, none dropped.
    expect(v).toMatchObject({ state: 'monitoring', reference_rows: REFERENCE, window_rows: 400, sampled_requests: sent, sampled_failures: 0, dropped: 0 });
    expect(v.features).toHaveLength(100);
    expect(v.reasons).toEqual([]);
    expect(v.drifted).toBe(false);
    expect(s.engine.drift.driftDetected('demo-logistic', version)).toBe(false);
  }, 30_000);

  it('reports the shifted feature through the API and /metrics', async () => {
    await send(800, 1);
    const r = await drift();
    const v = r.json.versions.find((x: { version: string }) => x.version === version);
    expect(v.drifted).toBe(true);
    expect(v.features.filter((f: { psi: number }) => f.psi >= 0.25).map((f: { index: number }) => f.index)).toEqual([SHIFTED]);
    expect(v.features[SHIFTED]).toMatchObject({ index: SHIFTED, psi_level: 'significant' });
    expect(v.features[SHIFTED].ks_p).toBeLessThan(1e-6);
    // Uniform on [0, 2] against a reference on [-1, 1]: about half the shifted values are above its max.
    expect(v.features[SHIFTED].out_of_range).toBeGreaterThan(300);
    expect(v.reasons.some((x: string) => x.startsWith(`feature ${SHIFTED}:`))).toBe(true);
    expect(v.reasons.some((x: string) => /^feature (?!5:)/.test(x))).toBe(false);
    expect(s.engine.drift.driftDetected('demo-logistic', version)).toBe(true);

    const text = await (await fetch(`${s.url}/metrics`)).text();
    expect(text).toContain(`sluice_drift_detected{model="demo-logistic",version="${version}"} 1`);
    const line = text.split('\n').find((l) => l.startsWith(`sluice_drift_psi{model="demo-logistic",version="${version}",feature="${SHIFTED}"} `));
    expect(Number(line!.split(' ')[1])).toBeGreaterThanOrEqual(0.25);
    // The whole exposition still parses, with both families as gauges.
    const families = parsePrometheus(text) as Array<{ name: string; type: string; metrics: unknown[] }>;
    const gauges = families.filter((f) => f.name.startsWith('sluice_drift_'));
    expect(gauges.map((f) => [f.name, f.type])).toEqual([['sluice_drift_psi', 'GAUGE'], ['sluice_drift_detected', 'GAUGE']]);
    expect(gauges[0]!.metrics).toHaveLength(101);
  }, 30_000);

  it('needs the admin scope, and an unknown model is MODEL_NOT_FOUND', async () => {
    expect((await admin(s, undefined, 'GET', '/v1/admin/models/demo-logistic/drift')).status).toBe(401);
    const predictKey = (await admin(s, s.adminKey, 'POST', '/v1/admin/keys', { name: 'svc', scopes: ['predict'] })).json.secret as string;
    expect(await admin(s, predictKey, 'GET', '/v1/admin/models/demo-logistic/drift')).toMatchObject({ status: 403, json: { code: 'PERMISSION_DENIED' } });
    const missing = await admin(s, s.adminKey, 'GET', '/v1/admin/models/nope/drift');
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe('MODEL_NOT_FOUND');
  });
});
