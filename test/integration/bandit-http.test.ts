/**
 * demo-bandit (LinUCB, 5 arms over the 100 features) through a whole server on PGlite with two
 * I/O threads: each row is a decision with an arm, its propensity and an event id; feedback on
 * those ids reaches the learner on the main thread, and the next answers, on every thread, come
 * from a state that includes it (parameters.state).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, startFull, type FullServer } from '../helpers/server.js';

const D = 100;

function features(rows: number, seed: number): number[] {
  return Array.from({ length: rows * D }, (_, i) => Math.sin(seed * 31 + i * 0.7) * 0.5);
}

describe('bandit models over HTTP', () => {
  let s: FullServer;

  beforeAll(async () => {
    s = await startFull({ ioThreads: 2 });
  }, 60_000);
  afterAll(async () => {
    await s?.close();
  });

  const infer = (rows: number, seed: number, extra: Record<string, unknown> = {}) =>
    admin(s, s.adminKey, 'POST', '/v2/models/demo-bandit/infer', { inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, D], data: features(rows, seed) }], ...extra });

  it('answers each row with an arm, its propensity, scores and an event id', async () => {
    const one = await infer(1, 1);
    expect(one.status, JSON.stringify(one.json)).toBe(200);
    const p = one.json.parameters;
    expect(p.event_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(p.variant).toBeUndefined();
    expect(p.state).toBeGreaterThanOrEqual(0);
    const out = Object.fromEntries(one.json.outputs.map((o: { name: string }) => [o.name, o]));
    expect(out.action.datatype).toBe('INT32');
    expect(out.action.data[0]).toBe(p.action);
    expect(out.action.data[0]).toBeGreaterThanOrEqual(0);
    expect(out.action.data[0]).toBeLessThan(5);
    expect(out.propensity.data[0]).toBeCloseTo(p.propensity, 6);
    // LinUCB with a floor of 0.01 over 5 arms: 0.96 for its arm, 0.01 for a floor pick.
    expect([0.96, 0.01].some((v) => Math.abs(p.propensity - v) < 1e-6)).toBe(true);
    expect(out.scores.shape).toEqual([1, 5]);
    const three = await infer(3, 2);
    expect(three.json.parameters.event_ids.split(',')).toHaveLength(3);
    expect(three.json.parameters.event_ids.split(',')[0]).toBe(three.json.parameters.event_id);
    expect(three.json.outputs[0].shape).toEqual([3, 1]);
  });

  it('learns from feedback: later answers carry a state that includes it', async () => {
    const before = (await infer(1, 3)).json.parameters.state as number;
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await infer(2, 10 + i);
      ids.push(...(r.json.parameters.event_ids as string).split(','));
    }
    // Decisions are logged in batches: feedback may have to wait for its decision (deferred).
    const fb = await admin(s, s.adminKey, 'POST', '/v1/feedback', { events: ids.map((id, i) => ({ event_id: id, reward: i % 2 })) });
    expect(fb.status, JSON.stringify(fb.json)).toBe(200);
    expect(fb.json.results.every((r: { status?: string }) => r.status === 'accepted')).toBe(true);
    let state = before;
    const deadline = Date.now() + 5000;
    while (state <= before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      state = (await infer(1, 4)).json.parameters.state;
    }
    expect(state).toBeGreaterThan(before);
    // Every I/O thread serves the new state: several connections spread over both threads.
    const states = await Promise.all(Array.from({ length: 8 }, (_, i) => infer(1, 40 + i)));
    for (const r of states) expect(r.json.parameters.state).toBeGreaterThanOrEqual(state);
    // All 40 events are learned, possibly over more than one mini-batch (the first one moved the state).
    const learned = /sluice_learner_events_total\{model="demo-bandit",version="1"\} 40/;
    let metrics = await (await fetch(`${s.url}/metrics`)).text();
    while (!learned.test(metrics) && Date.now() < deadline + 5000) {
      await new Promise((r) => setTimeout(r, 50));
      metrics = await (await fetch(`${s.url}/metrics`)).text();
    }
    expect(metrics).toMatch(learned);
  });

  it('refuses contexts of the wrong width or with non-finite values', async () => {
    const bad = await admin(s, s.adminKey, 'POST', '/v2/models/demo-bandit/infer', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] });
    expect(bad.status).toBe(400);
    const nan = await admin(s, s.adminKey, 'POST', '/v2/models/demo-bandit/infer', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, D], data: [...features(1, 1).slice(1), 'NaN'] }] });
    expect(nan.status).toBe(400);
  });
});
