/**
 * `npm run bench -- rollout`: how long a faulty canary serves before the controller rolls it
 * back, at 1,000 requests/s. A server (in this process: embedded registry, fixture versions in
 * the pool, the default SLUICE_DEPLOYMENT_INTERVAL_MS of 1 s) answers a paced load of 1,000
 * req/s (10 every 10 ms over 16 keep-alive connections); a canary of a version failing every 5th
 * request starts at 1%, 5%, 25%, 50%, 100% steps with the default checks. Correctness first: the
 * stable version's answers are the fixture's sums, and only the canary's requests fail.
 * Figures, per run (3 runs, each a fresh canary): seconds from the canary taking traffic (its
 * creation answered) to its rollback, its share at the rollback, failed requests, and the same
 * time in controller intervals (the same-run unit the time is made of: a look every interval,
 * each on the windows' 10 s buckets).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { serve } from '../src/serve.js';
import { check, median, table } from './util.js';

const MODEL = 'rollout';
const BODY = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });

function manifest(parameters: Record<string, unknown>) {
  return {
    name: MODEL, kind: 'fixture', max_batch_size: 8, dispatch: 'pool',
    signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }] },
    payload: { file: 'fixture.json' }, parameters: { op: 'sum', sleep_us: 100, ...parameters },
  };
}

export async function runRollout(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-bench-rollout-'));
  const adminKey = `sk_bench_${randomBytes(16).toString('hex')}`;
  const intervalMs = 1000;
  const server = await serve({ dataDir: dir, httpPort: 0, grpcPort: 0, adminKey, allowFixtureModels: true, admission: false, deploymentIntervalMs: intervalMs });
  const url = `http://127.0.0.1:${server.httpPort}`;
  const pool = new Pool(url, { connections: 16 });
  const call = async (method: 'GET' | 'POST', p: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await pool.request({ method, path: p, headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : body instanceof Buffer ? body : JSON.stringify(body) });
    return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
  };
  const rows: Array<Array<string | number>> = [];
  try {
    for (const [v, p] of [['1', {}], ['2', { fail_every: 5 }]] as const) {
      const head = Buffer.from(JSON.stringify({ version: v, manifest: manifest(p) }));
      const r = await call('POST', `/v1/admin/models/${MODEL}/versions`, Buffer.concat([head, Buffer.from('{}')]), { 'content-type': 'application/octet-stream', 'register-header-length': String(head.byteLength) });
      check(r.status === 200, `registered version ${v}`);
    }
    check((await call('POST', `/v1/admin/models/${MODEL}/promote`, { version: '1' })).status === 200, 'promoted version 1');
    for (let run = 0; run < 3; run++) {
      let stop = false;
      let failed = 0;
      let wrong = 0;
      const byVersion = new Map<string, number>();
      const send = async () => {
        const r = await pool.request({ method: 'POST', path: `/v2/models/${MODEL}/infer`, headers: { 'content-type': 'application/json' }, body: BODY });
        const j = (await r.body.json()) as { model_version?: string; outputs?: Array<{ data: number[] }> };
        if (r.statusCode !== 200) failed++;
        else {
          byVersion.set(j.model_version!, (byVersion.get(j.model_version!) ?? 0) + 1);
          if (j.outputs?.[0]?.data[0] !== 10) wrong++;
        }
      };
      // 1,000 req/s: 10 every 10 ms, paced on the clock (a late tick sends what it owes).
      const started = performance.now();
      let sent = 0;
      const pacer = (async () => {
        while (!stop) {
          const owed = Math.floor((performance.now() - started) / 1000 * 1000) - sent;
          for (let i = 0; i < owed; i++) void send().catch(() => failed++);
          sent += Math.max(0, owed);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await new Promise((r) => setTimeout(r, 3000)); // the stable version's windows fill
      const created = await call('POST', '/v1/admin/deployments', { model: MODEL, kind: 'canary', candidate: '2' });
      check(created.status === 200, `canary created: ${JSON.stringify(created.json)}`);
      const t0 = performance.now();
      const id = created.json.id as number;
      let d: Record<string, unknown> = created.json;
      while (d.status === 'running' && performance.now() - t0 < 60_000) {
        await new Promise((r) => setTimeout(r, 20));
        d = (await call('GET', `/v1/admin/deployments/${id}`)).json;
      }
      const seconds = (performance.now() - t0) / 1000;
      stop = true;
      await pacer;
      await new Promise((r) => setTimeout(r, 300));
      check(d.status === 'rolled_back', `the faulty canary was rolled back (status ${String(d.status)})`);
      check(wrong === 0, 'every answer is the fixture sum');
      const canaryAnswers = byVersion.get('2') ?? 0;
      // The canary fails every 5th of its requests: about one failure per four of its answers.
      check(failed > 0 && failed <= canaryAnswers / 4 + 5, `failures (${failed}) come from the canary only (${canaryAnswers} canary answers)`);
      rows.push([run + 1, seconds, `${(d.spec as { steps: number[] }).steps[Number(d.step)]}%`, failed, canaryAnswers, seconds / (intervalMs / 1000)]);
      console.log(`rollout: run ${run + 1}: rolled back after ${seconds.toFixed(2)} s (${String((d.outcome as { reason: string }).reason).slice(0, 120)})`);
      // A fresh start for the next run: production is still version 1, the route is cleared.
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await pool.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const times = rows.map((r) => Number(r[1]));
  table(`rollout: a canary failing 20% of its requests at 1,000 req/s, rolled back (median ${median(times).toFixed(2)} s; target < 10 s)`,
    ['run', 'seconds to rollback', 'step', 'failed requests', 'canary answers', 'controller intervals'], rows);
}
