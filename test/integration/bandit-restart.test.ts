/**
 * Learning survives a restart: demo-bandit learns from feedback, the server stops (its learner
 * checkpoints at shutdown into the artifact store, recorded in the registry), and a new server
 * on the same data directory answers from that state: same state number, same scores.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { serve } from '../../src/serve.js';
import { admin, until } from '../helpers/server.js';
import { tempDir } from '../helpers/services.js';

const D = 100;
const x = Array.from({ length: D }, (_, i) => Math.cos(i) * 0.3);

describe('learned state across a restart', () => {
  const dirs: Array<{ cleanup: () => Promise<void> }> = [];
  afterAll(async () => {
    for (const d of dirs) await d.cleanup();
  });

  it('restores demo-bandit from the checkpoint its learner saved at shutdown', async () => {
    const tmp = await tempDir('sluice-restart-');
    dirs.push(tmp);
    const adminKey = `sk_test_admin_${randomBytes(24).toString('hex')}`;
    const start = () => serve({ dataDir: tmp.dir, httpPort: 0, grpcPort: 0, workers: 1, adminKey, startupModels: ['demo-bandit'], reconcileMs: 60_000 });
    const ask = async (url: string) => (await admin({ url }, adminKey, 'POST', '/v2/models/demo-bandit/infer', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, D], data: x }] })).json;

    const first = await start();
    const url1 = `http://127.0.0.1:${first.httpPort}`;
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await admin({ url: url1 }, adminKey, 'POST', '/v2/models/demo-bandit/infer', { inputs: [{ name: 'features', datatype: 'FP32', shape: [4, D], data: Array.from({ length: 4 * D }, (_, j) => Math.sin(i * 7 + j)) }] });
      ids.push(...(r.json.parameters.event_ids as string).split(','));
    }
    const fb = await admin({ url: url1 }, adminKey, 'POST', '/v1/feedback', { events: ids.map((id, i) => ({ event_id: id, reward: i % 3 === 0 ? 1 : 0 })) });
    expect(fb.json.results.every((r: { status?: string }) => r.status === 'accepted')).toBe(true);
    let before = await ask(url1);
    const deadline = Date.now() + 5000;
    while (before.parameters.state === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      before = await ask(url1);
    }
    expect(before.parameters.state).toBeGreaterThan(0);
    // All 40 events learned (they may come in more than one mini-batch): the state to compare.
    const learned = async () => /sluice_learner_events_total\{model="demo-bandit",version="1"\} 40/.test(await (await fetch(`${url1}/metrics`)).text());
    while (!(await learned()) && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 50));
    before = await ask(url1);
    await first.stop();

    const second = await start();
    try {
      const after = await ask(`http://127.0.0.1:${second.httpPort}`);
      expect(after.parameters.state).toBe(before.parameters.state);
      // The same state: the same UCB scores for the same context (A^-1 is rebuilt from A in the
      // checkpoint, so equal to rounding).
      (after.outputs[2].data as number[]).forEach((v, i) => expect(v).toBeCloseTo(before.outputs[2].data[i], 5));
      const metrics = await (await fetch(`http://127.0.0.1:${second.httpPort}/metrics`)).text();
      expect(metrics).toMatch(/sluice_learner_events_total\{model="demo-bandit",version="1"\} 40/);
      // The embedded database's checkpointer reports from its thread after each check (one a
      // second): the WAL since the last checkpoint is never 0 once the server has written.
      expect(metrics).toMatch(/^sluice_embedded_db_checkpoints_total \d+$/m);
      const walSince = async () => Number(/^sluice_embedded_db_wal_since_checkpoint_bytes (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${second.httpPort}/metrics`)).text())?.[1]);
      await until(async () => (await walSince()) > 0, 10_000, 200);
      expect(await walSince(), 'WAL since the last checkpoint, from /metrics').toBeGreaterThan(0);
    } finally {
      await second.stop();
    }
  }, 120_000);
});
