/**
 * Canary deployments end to end over HTTP on a whole server (PGlite, two I/O threads, fixture
 * versions in the pool): under steady traffic, a candidate failing 20% of its requests and one
 * 5x slower are rolled back by the controller (route cleared, status and reason, the failures
 * only while the canary had traffic), and a healthy one walks its steps to 100% and becomes
 * production. Also: refusals with stable codes, pause and resume, abort, and the event trail.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, registerBody, startFull, until, type FullServer } from '../helpers/server.js';

const MODEL = 'canary-m';
const DEP = '/v1/admin/deployments';

function fixture(version: string, parameters: Record<string, unknown>) {
  return registerBody({
    version,
    manifest: {
      name: MODEL, kind: 'fixture', max_batch_size: 8, dispatch: 'pool',
      signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] },
      payload: { file: 'fixture.json' }, parameters: { op: 'sum', ...parameters },
    },
  }, Buffer.from('{}'));
}

describe('deployments over HTTP', () => {
  let s: FullServer;
  const switchFile = path.join(tmpdir(), `sluice-bg-${process.pid}-${Date.now()}`);
  const call = (method: string, path: string, body?: unknown) => admin(s, s.adminKey, method, path, body);
  /**
   * The deployment once it has finished (any status but running or paused): a test then checks
   * its status with the outcome beside it, so a wrong ending says why it ended.
   */
  async function finished(id: number, ms: number) {
    let d: { status: string; outcome?: any; [k: string]: any } = { status: 'running' };
    await until(async () => {
      d = (await call('GET', `${DEP}/${id}`)).json;
      return d.status !== 'running' && d.status !== 'paused';
    }, ms);
    return d;
  }

  /** Steady traffic until stopped: answers and failures by model_version (failures by code). */
  function traffic(concurrency = 6) {
    let stop = false;
    const answered = new Map<string, number>();
    const failed = new Map<string, number>();
    let failedAfter: number | undefined;
    const loops = Array.from({ length: concurrency }, async () => {
      while (!stop) {
        const r = await fetch(`${s.url}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4 * Math.random()] }] }) });
        const j = (await r.json()) as { model_version?: string; code?: string };
        if (r.status === 200) answered.set(j.model_version!, (answered.get(j.model_version!) ?? 0) + 1);
        else {
          failed.set(j.code!, (failed.get(j.code!) ?? 0) + 1);
          if (failedAfter !== undefined) failedAfter++;
        }
      }
    });
    return {
      answered, failed,
      countFailuresFromNow: () => (failedAfter = 0),
      get failedAfter() { return failedAfter ?? 0; },
      stop: async () => {
        stop = true;
        await Promise.all(loops);
      },
    };
  }

  beforeAll(async () => {
    // Every request sampled for drift: the canary drift check compares the versions' predictions.
    s = await startFull({ allowFixtureModels: true, ioThreads: 2, workers: 4, admission: false, deploymentIntervalMs: 100, driftSampleRate: 1 });
    const versions: Array<[string, Record<string, unknown>]> = [
      ['1', { sleep_us: 300 }], ['2', { sleep_us: 300, fail_every: 5 }], ['3', { sleep_us: 4000 }], ['4', { sleep_us: 300 }],
      // blue-green: healthy, and slow while the test's switch file exists; shadow: agreeing, and failing
      ['5', { sleep_us: 300 }], ['6', { sleep_us: 300, hang_while_exists: switchFile, hang_ms: 20 }], ['7', { sleep_us: 300 }], ['8', { sleep_us: 300, error_on: 1 }],
      // canary: predicting 2 more than the stable version (healthy otherwise)
      ['10', { sleep_us: 300, offset: 2 }],
    ];
    for (const [v, p] of versions) {
      const reg = fixture(v, p);
      expect((await admin(s, s.adminKey, 'POST', `/v1/admin/models/${MODEL}/versions`, reg.body, reg.headers)).status, v).toBe(200);
    }
    expect((await call('POST', `/v1/admin/models/${MODEL}/promote`, { version: '1' })).status).toBe(200);
    await until(async () => (await fetch(`${s.url}/v2/models/${MODEL}/ready`)).status === 200, 20_000);
  }, 60_000);
  afterAll(async () => {
    rmSync(switchFile, { force: true });
    await s?.close();
  });

  const canary = (candidate: string, extra: Record<string, unknown> = {}) => ({
    model: MODEL, kind: 'canary', candidate, steps: [10, 50, 100], step_min_s: 1, step_min_requests: 30, window_s: 10,
    checks: { min_requests: 30, max_p99_ratio: 2 }, ...extra,
  });

  it('refuses bad deployments with stable codes', async () => {
    expect(await call('POST', DEP, { ...canary('2'), steps: [50, 10, 100] })).toMatchObject({ status: 400, json: { code: 'DEPLOYMENT_INVALID' } });
    expect(await call('POST', DEP, canary('1'))).toMatchObject({ status: 400, json: { code: 'DEPLOYMENT_INVALID', error: expect.stringMatching(/already production/) } });
    expect(await call('POST', DEP, canary('9'))).toMatchObject({ status: 404, json: { code: 'VERSION_NOT_FOUND' } });
    expect(await call('POST', DEP, { ...canary('2'), model: 'nope' })).toMatchObject({ status: 404, json: { code: 'MODEL_NOT_FOUND' } });
    expect(await call('GET', `${DEP}/999`)).toMatchObject({ status: 404, json: { code: 'DEPLOYMENT_NOT_FOUND' } });
    expect(await call('GET', `${DEP}/abc`)).toMatchObject({ status: 400, json: { code: 'DEPLOYMENT_INVALID' } });
    expect(await admin(s, undefined, 'POST', DEP, canary('2'))).toMatchObject({ status: 401 });
  });

  // The drift case's step is long enough for its first sampled predictions to be collected
  // (every second) before the step could pass on errors and latency alone.
  const drift = { step_min_s: 5, checks: { min_requests: 30, max_p99_ratio: 2, min_predictions: 20 } };
  for (const [candidate, what, check, extra] of [['2', 'fails 20% of its requests', /^errors:/, {}], ['3', 'is 5x slower', /^latency:/, {}], ['10', 'predicts differently', /^drift: predictions canary vs stable: KS distance/, drift]] as const) {
    it(`rolls back a canary that ${what}, at its first step, and failures stop with it`, async () => {
      const t = traffic();
      try {
        await new Promise((r) => setTimeout(r, 500));
        const created = await call('POST', DEP, canary(candidate, extra));
        expect(created).toMatchObject({ status: 200, json: { status: 'running', step: 0, share: 0.1, stable: '1', candidate } });
        expect(await call('POST', DEP, canary('4'))).toMatchObject({ status: 409, json: { code: 'DEPLOYMENT_ACTIVE' } });
        const id = created.json.id as number;
        const d = await finished(id, 30_000);
        expect(d.status, JSON.stringify(d.outcome)).toBe('rolled_back');
        expect(d.outcome.reason).toMatch(check);
        expect(d.step).toBe(0); // never left 10%
        expect(d.events.map((e: { action: string }) => e.action)).toEqual(['start', 'rollback']);
        expect((await call('GET', `/v1/admin/models/${MODEL}/route`)).json.route).toBeNull();
        // After the rollback only the stable version answers, and nothing fails.
        await new Promise((r) => setTimeout(r, 300));
        t.countFailuresFromNow();
        const before = t.answered.get(candidate) ?? 0;
        await new Promise((r) => setTimeout(r, 1500));
        expect(t.failedAfter).toBe(0);
        expect(t.answered.get(candidate) ?? 0).toBe(before);
      } finally {
        await t.stop();
      }
      expect(t.answered.get(candidate) ?? 0).toBeGreaterThan(0);
      // Every failure is the faulty canary's (the stable version never fails).
      expect([...t.failed.keys()].every((code) => code === 'MODEL_ERROR')).toBe(true);
      if (candidate !== '2') expect(t.failed.size).toBe(0);
    }, 60_000);
  }

  it('walks a healthy canary through its steps to 100% and promotes it; pause holds it', async () => {
    const t = traffic();
    try {
      const id = (await call('POST', DEP, canary('4'))).json.id as number;
      expect(await call('POST', `${DEP}/${id}/pause`, { reason: 'look first' })).toMatchObject({ status: 200, json: { status: 'paused' } });
      await new Promise((r) => setTimeout(r, 1500));
      expect((await call('GET', `${DEP}/${id}`)).json).toMatchObject({ status: 'paused', step: 0 });
      expect(await call('POST', `${DEP}/${id}/pause`, {})).toMatchObject({ status: 409, json: { code: 'DEPLOYMENT_FINISHED' } });
      expect(await call('POST', `${DEP}/${id}/resume`, {})).toMatchObject({ status: 200, json: { status: 'running' } });
      const d = await finished(id, 45_000);
      expect(d.status, JSON.stringify(d.outcome)).toBe('promoted');
      expect(d.events.map((e: { action: string; share: number }) => [e.action, e.share])).toEqual([
        ['start', 0.1], ['pause', 0.1], ['resume', 0.1], ['advance', 0.5], ['advance', 1], ['promote', 1],
      ]);
      expect((await call('GET', `/v1/admin/models/${MODEL}`)).json.productionVersion).toBe('4');
      expect((await call('GET', `/v1/admin/models/${MODEL}/route`)).json.route).toBeNull();
      await until(async () => (t.answered.get('4') ?? 0) > 0 && (await (await fetch(`${s.url}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }) })).json() as { model_version: string }).model_version === '4', 10_000);
      const audit = (await call('GET', `/v1/admin/audit?model=${MODEL}&limit=50`)).json as Array<{ action: string; toVersion: string; reason: string }>;
      expect(audit.find((a) => a.action === 'promote' && a.toVersion === '4')!.reason).toMatch(new RegExp(`deployment ${id}: promote`));
    } finally {
      await t.stop();
    }
    expect(t.failed.size).toBe(0);
  }, 90_000);

  it('aborts: traffic back to production at once', async () => {
    const id = (await call('POST', DEP, { model: MODEL, kind: 'canary', candidate: '1', step_min_s: 3600 })).json.id as number;
    expect((await call('GET', `/v1/admin/models/${MODEL}/route`)).json.route).not.toBeNull();
    expect(await call('POST', `${DEP}/${id}/abort`, { reason: 'not today' })).toMatchObject({ status: 200, json: { status: 'aborted', outcome: { action: 'abort', reason: 'not today' } } });
    expect((await call('GET', `/v1/admin/models/${MODEL}/route`)).json.route).toBeNull();
    expect(await call('POST', `${DEP}/${id}/promote`, {})).toMatchObject({ status: 409, json: { code: 'DEPLOYMENT_FINISHED' } });
    const list = (await call('GET', `${DEP}?state=finished`)).json as Array<{ status: string }>;
    expect(list.map((d) => d.status)).toEqual(['rolled_back', 'rolled_back', 'rolled_back', 'promoted', 'aborted']);
  });

  it('blue-green: a fault during the bake switches back to blue in one step, with no failed request', async () => {
    const t = traffic();
    try {
      await new Promise((r) => setTimeout(r, 1500)); // blue's baseline
      const id = (await call('POST', DEP, { model: MODEL, kind: 'blue-green', candidate: '6', bake_s: 60, window_s: 10, checks: { min_requests: 30, max_p99_ratio: 2 } })).json.id as number;
      expect((await call('GET', `${DEP}/${id}`)).json).toMatchObject({ status: 'running', share: 1, stable: '4' });
      await until(() => (t.answered.get('6') ?? 0) > 50, 10_000);
      writeFileSync(switchFile, 'slow');
      const d = await finished(id, 30_000);
      expect(d.status, JSON.stringify(d.outcome)).toBe('rolled_back');
      expect(d.outcome.reason).toMatch(/^latency:/);
      expect(d.events.map((e: { action: string }) => e.action)).toEqual(['start', 'rollback']);
      expect((await call('GET', `/v1/admin/models/${MODEL}/route`)).json.route).toBeNull();
      const blue = t.answered.get('4') ?? 0;
      await until(() => (t.answered.get('4') ?? 0) > blue + 20, 10_000);
    } finally {
      rmSync(switchFile, { force: true });
      await t.stop();
    }
    expect(t.failed.size).toBe(0);
    expect((await call('GET', `/v1/admin/models/${MODEL}`)).json.productionVersion).toBe('4');
  }, 60_000);

  it('blue-green: promotes green after a quiet bake', async () => {
    const t = traffic(3);
    try {
      await new Promise((r) => setTimeout(r, 500));
      // The bake compares green with blue's figures from before the switch, minutes apart on a
      // machine the rest of the suite shares: latency is this test's noise, not its subject
      // (the test above has the slow green).
      const id = (await call('POST', DEP, { model: MODEL, kind: 'blue-green', candidate: '5', bake_s: 2, window_s: 10, checks: { min_requests: 30, max_p99_ratio: 20 } })).json.id as number;
      await until(() => (t.answered.get('5') ?? 0) > 50, 10_000);
      const blue = t.answered.get('4') ?? 0;
      const d = await finished(id, 30_000);
      expect(d.status, JSON.stringify(d.outcome)).toBe('promoted');
      // The promotion clears the route only once green is the default: blue never answers again,
      // not even between the two changes.
      await new Promise((r) => setTimeout(r, 1000));
      expect(t.answered.get('4') ?? 0).toBe(blue);
    } finally {
      await t.stop();
    }
    expect(t.failed.size).toBe(0);
    expect((await call('GET', `/v1/admin/models/${MODEL}`)).json.productionVersion).toBe('5');
  }, 60_000);

  it('shadow: promotes a candidate that agrees; discards one that fails its mirrored requests', async () => {
    for (const [candidate, status, reason] of [['8', 'rolled_back', /^discarded: error rate (0\.99\d+|1\.0000) > 0.01/], ['7', 'promoted', /within the rule/]] as const) {
      const t = traffic(3);
      try {
        // A mirrored copy runs after the caller's answer, on cores the rest of the suite shares:
        // the p99 ratio is this test's noise, not its subject (the rule's agreement and errors are).
        const id = (await call('POST', DEP, { model: MODEL, kind: 'shadow', candidate, fraction: 1, duration_s: 2, rule: { min_compared: 20, max_p99_ratio: 100 } })).json.id as number;
        expect((await call('GET', `/v1/admin/models/${MODEL}/route`)).json.route).toMatchObject({ shadows: [{ version: candidate, fraction: 1 }] });
        const d = await finished(id, 30_000);
        expect(d.status, JSON.stringify(d.outcome)).toBe(status);
        expect(d.outcome.reason).toMatch(reason);
      } finally {
        await t.stop();
      }
      // The caller never sees the shadow: no failure, all answers from the stable version.
      expect(t.failed.size).toBe(0);
      expect([...t.answered.keys()].every((v) => v === '5' || (status === 'promoted' && v === '7')), JSON.stringify([...t.answered])).toBe(true);
    }
    expect((await call('GET', `/v1/admin/models/${MODEL}`)).json.productionVersion).toBe('7');
  }, 60_000);
});
