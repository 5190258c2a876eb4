/**
 * A deployment outlives the replica driving it: servers on one PostgreSQL and one S3 bucket.
 * (1) the first (in this process) starts a canary and stops in the middle of a step, as a restart
 * ends it; the second, which never saw the deployment start, carries it on from the step in the
 * database to its promotion. (2) Two server PROCESSES: the one driving a canary is SIGKILLed
 * mid-step (its advisory lock goes with its connections), and the other takes over and promotes.
 * Needs PostgreSQL and S3 (skipped with the reason otherwise).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Config } from '../../src/config/index.js';
import { serve, type Running } from '../../src/serve.js';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';
import { admin, registerBody, until } from '../helpers/server.js';
import { createPgDatabase, createTestBucket, describeWith, postgresService, s3Service, tempDir } from '../helpers/services.js';

const MODEL = 'takeover-m';

function fixture(version: string) {
  return registerBody({
    version,
    manifest: {
      name: MODEL, kind: 'fixture', max_batch_size: 8, dispatch: 'pool',
      signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] },
      payload: { file: 'fixture.json' }, parameters: { op: 'sum', sleep_us: 200 },
    },
  }, Buffer.from('{}'));
}

describeWith(s3Service, 'deployment takeover (S3)', () => describeWith(postgresService, 'deployment takeover (PostgreSQL)', () => {
  const adminKey = `sk_test_admin_${randomBytes(24).toString('hex')}`;
  const cleanups: Array<() => Promise<void>> = [];
  let shared: Partial<Config>;

  beforeAll(async () => {
    const db = await createPgDatabase();
    const b = await createTestBucket();
    cleanups.push(db.drop, b.cleanup);
    shared = { databaseUrl: db.url, s3Bucket: b.bucket, s3Endpoint: b.endpoint, s3Region: b.region, s3AccessKeyId: b.accessKeyId, s3SecretAccessKey: b.secretAccessKey, s3ForcePathStyle: true };
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  async function start(): Promise<{ r: Running; url: string }> {
    const dir = await tempDir('sluice-takeover-');
    cleanups.push(dir.cleanup);
    const r = await serve({ ...shared, dataDir: dir.dir, httpPort: 0, grpcPort: 0, workers: 2, adminKey, allowFixtureModels: true, admission: false, reconcileMs: 500, deploymentIntervalMs: 100 });
    return { r, url: `http://127.0.0.1:${r.httpPort}` };
  }

  function load(url: string) {
    let stop = false;
    let failed = 0;
    let dropped = 0; // connections that failed: a loop ends at its first (every loop ends when its server is killed)
    const versions = new Set<string>();
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        let res: Response;
        let j: { model_version?: string };
        try {
          res = await fetch(`${url}/v2/models/${MODEL}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }) });
          j = (await res.json()) as { model_version?: string };
        } catch {
          dropped++;
          return;
        }
        if (res.status === 200) versions.add(j.model_version!);
        else failed++;
      }
    });
    return { versions, get failed() { return failed + dropped; }, get dropped() { return dropped; }, stop: async () => { stop = true; await Promise.all(loops); } };
  }

  /**
   * Waits for deployment `id` as `url` serves it to satisfy `done`; on timeout the error carries
   * its last state (status, step, the judge's last verdict), not just "the condition".
   */
  async function untilDeployment(url: string, id: number, done: (d: { status: string; step: number }) => boolean, ms: number): Promise<void> {
    let last: { status: string; step: number } | undefined;
    try {
      await until(async () => done((last = (await admin({ url }, adminKey, 'GET', `/v1/admin/deployments/${id}`)).json)), ms);
    } catch (e) {
      throw new Error(`deployment ${id} at ${url} after ${ms} ms: ${JSON.stringify(last)}`, { cause: e });
    }
  }

  it('a second replica carries a canary on from the step the first left it in', async () => {
    const a = await start();
    for (const v of ['1', '2']) {
      const reg = fixture(v);
      expect((await admin({ url: a.url }, adminKey, 'POST', `/v1/admin/models/${MODEL}/versions`, reg.body, reg.headers)).status).toBe(200);
    }
    expect((await admin({ url: a.url }, adminKey, 'POST', `/v1/admin/models/${MODEL}/promote`, { version: '1' })).status).toBe(200);
    await until(async () => (await fetch(`${a.url}/v2/models/${MODEL}/ready`)).status === 200, 20_000);
    const la = load(a.url);
    const created = await admin({ url: a.url }, adminKey, 'POST', '/v1/admin/deployments', {
      model: MODEL, kind: 'canary', candidate: '2', steps: [20, 60, 100], step_min_s: 1, step_min_requests: 20, window_s: 10, checks: { min_requests: 20 },
    });
    expect(created.status).toBe(200);
    const id = created.json.id as number;
    // Replica A drives it to its second step, then goes away mid-step.
    await until(async () => (await admin({ url: a.url }, adminKey, 'GET', `/v1/admin/deployments/${id}`)).json.step >= 1, 30_000);
    await la.stop();
    await a.r.stop();
    const b = await start();
    await until(async () => (await fetch(`${b.url}/v2/models/${MODEL}/ready`)).status === 200, 20_000);
    const lb = load(b.url);
    try {
      await untilDeployment(b.url, id, (d) => d.status !== 'running', 45_000);
    } finally {
      await lb.stop();
    }
    expect((await admin({ url: b.url }, adminKey, 'GET', `/v1/admin/deployments/${id}`)).json).toMatchObject({ status: 'promoted' });
    const d = (await admin({ url: b.url }, adminKey, 'GET', `/v1/admin/deployments/${id}`)).json;
    expect(d.events.map((e: { action: string }) => e.action)).toEqual(['start', 'advance', 'advance', 'promote']);
    expect((await admin({ url: b.url }, adminKey, 'GET', `/v1/admin/models/${MODEL}`)).json.productionVersion).toBe('2');
    expect(la.failed + lb.failed).toBe(0);
    expect(lb.versions.has('2')).toBe(true);
    await b.r.stop();
  }, 120_000);

  it('a replica process takes a canary over when the one driving it is SIGKILLed', async () => {
    const env = (dir: string): Record<string, string> => ({
      SLUICE_DATA_DIR: dir, SLUICE_DATABASE_URL: shared.databaseUrl!, SLUICE_S3_BUCKET: shared.s3Bucket!, SLUICE_S3_ENDPOINT: shared.s3Endpoint!,
      SLUICE_S3_REGION: shared.s3Region!, SLUICE_S3_ACCESS_KEY_ID: shared.s3AccessKeyId!, SLUICE_S3_SECRET_ACCESS_KEY: shared.s3SecretAccessKey!,
      SLUICE_S3_FORCE_PATH_STYLE: 'true', SLUICE_ADMIN_KEY: adminKey, SLUICE_ALLOW_FIXTURE_MODELS: 'true', SLUICE_ADMISSION: 'false',
      SLUICE_DEPLOYMENT_INTERVAL_MS: '100', SLUICE_REGISTRY_RECONCILE_MS: '500', SLUICE_WORKERS: '2',
    });
    const dirs = await Promise.all([tempDir('sluice-kill-a-'), tempDir('sluice-kill-b-')]);
    for (const d of dirs) cleanups.push(d.cleanup);
    const [a, b] = await Promise.all(dirs.map((d) => startSluiceProcess({ env: env(d.dir) })));
    cleanups.push(async () => {
      b!.child.kill('SIGKILL');
      await b!.exited;
    });
    // Version 3 (the production is 2 after the test above) as the candidate.
    const reg = fixture('3');
    expect((await admin({ url: a!.http }, adminKey, 'POST', `/v1/admin/models/${MODEL}/versions`, reg.body, reg.headers)).status).toBe(200);
    await until(async () => (await fetch(`${b!.http}/v2/models/${MODEL}/ready`)).status === 200, 20_000);
    // Traffic to both replicas; a long first step that only A has had time to judge.
    const la = load(a!.http);
    const lb = load(b!.http);
    const created = await admin({ url: a!.http }, adminKey, 'POST', '/v1/admin/deployments', {
      model: MODEL, kind: 'canary', candidate: '3', steps: [20, 60, 100], step_min_s: 2, step_min_requests: 20, window_s: 10, checks: { min_requests: 20 },
    });
    expect(created.status).toBe(200);
    const id = created.json.id as number;
    await until(async () => (await admin({ url: b!.http }, adminKey, 'GET', `/v1/admin/deployments/${id}`)).json.step >= 1, 30_000);
    a!.child.kill('SIGKILL');
    expect(await a!.exited).toBeNull(); // killed by the signal, not exited
    await la.stop(); // its loops ended with the connections the kill closed
    try {
      await untilDeployment(b!.http, id, (d) => d.status === 'promoted', 60_000);
    } finally {
      await lb.stop();
    }
    const d = (await admin({ url: b!.http }, adminKey, 'GET', `/v1/admin/deployments/${id}`)).json;
    expect(d.events.map((e: { action: string }) => e.action)).toEqual(['start', 'advance', 'advance', 'promote']);
    expect((await admin({ url: b!.http }, adminKey, 'GET', `/v1/admin/models/${MODEL}`)).json.productionVersion).toBe('3');
    expect(lb.failed).toBe(0);
  }, 150_000);
}));
