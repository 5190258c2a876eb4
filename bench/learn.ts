/**
 * Issue #13's learner figures, `npm run bench -- learn [--quick]`:
 *  1. Learner updates applied per second in-process (target >= 100,000 events/s): joined
 *     feedback offered to a LinUCB learner and applied in mini-batches of 256, for d = 32 x 10
 *     arms and d = 100 x 5 arms (demo-bandit's shape); beside it, the native update kernel
 *     alone on the same events (the floor: what the learner adds is queueing, checks and the
 *     publication). Correctness first: the learner's state equals the kernel's.
 *  2. Feedback acknowledged to a serving state that includes it (target p99 < 1 s with a
 *     100 ms mini-batch interval): a server in this process (embedded registry, demo-bandit),
 *     decisions and feedback over HTTP; for each acknowledged feedback batch, the time until the
 *     state cell every I/O thread reads holds its events. The feedback round trip itself is
 *     printed beside it as the same-run baseline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BanditLearner } from '../src/learn/bandit-learner.js';
import { parseBanditConfig } from '../src/learn/bandit/config.js';
import { initialState } from '../src/learn/bandit/layout.js';
import { banditManifest, mulberry32 } from '../src/learn/bandit/simulation.js';
import type { JoinedFeedback } from '../src/learn/feedback.js';
import { linucbLearn } from '../src/native.js';
import { serve } from '../src/serve.js';
import { check, median, table } from './util.js';

const ACCEPT = { check: () => ({ ok: true as const }) };

function events(n: number, d: number, k: number, seed: number): JoinedFeedback[] {
  const u = mulberry32(seed);
  return Array.from({ length: n }, (_, i) => {
    const x = Float32Array.from({ length: d }, () => u() * 2 - 1);
    const id = String(i);
    return { eventId: id, reward: u(), at: i, decision: { eventId: id, at: i, model: 'sim', variant: '', version: '1', propensity: 0.5, routeGen: 0, features: x, action: i % k } };
  });
}

function learnerThroughput(d: number, k: number, n: number, rounds: number): { learner: number; kernel: number } {
  const m = banditManifest('linucb', k, d, { learning: { batch_size: 256, interval_ms: 100 } });
  const c = parseBanditConfig(m);
  const evs = events(n, d, k, d * 7 + k);
  const arms = Uint32Array.from(evs, (e) => e.decision.action!);
  const x = new Float32Array(n * d);
  evs.forEach((e, i) => x.set(e.decision.features as Float32Array, i * d));
  const rewards = Float64Array.from(evs, (e) => e.reward);
  const ls: number[] = [];
  const ks: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const learner = new BanditLearner(m, ACCEPT, { state: initialState(c), updates: 0, events: 0 });
    let t0 = process.hrtime.bigint();
    for (const e of evs) learner.offer(e);
    learner.flush();
    ls.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
    const s = initialState(c);
    const dd = k * d * d;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i += 256) {
      const to = Math.min(n, i + 256);
      linucbLearn(s.subarray(0, dd), s.subarray(dd, 2 * dd), s.subarray(2 * dd, 2 * dd + k * d), arms.subarray(i, to), x.subarray(i * d, to * d), rewards.subarray(i, to));
    }
    ks.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
    const mine = learner.snapshot().state;
    for (let i = 0; i < 2 * dd + k * d; i++) check(Math.abs(mine[i]! - s[i]!) <= 1e-9 * (1 + Math.abs(s[i]!)), `learner state differs from the kernel's at ${i}: ${mine[i]} vs ${s[i]}`);
    check(learner.counters.events === n, `learner applied ${learner.counters.events} of ${n}`);
  }
  return { learner: median(ls), kernel: median(ks) };
}

async function feedbackToState(quick: boolean): Promise<{ p50: number; p99: number; ackP50: number; ackP99: number; n: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-learn-'));
  const s = await serve({ dataDir: dir, httpPort: 0, grpcPort: 0, startupModels: ['demo-bandit'], authMode: 'never', admission: false });
  try {
    const url = `http://127.0.0.1:${s.httpPort}`;
    const learner = s.engine.learners.get('demo-bandit', '1');
    check(learner !== undefined, 'demo-bandit has no learner');
    const u = mulberry32(5);
    const lat: number[] = [];
    const acks: number[] = [];
    let acked = 0;
    const batches = quick ? 60 : 300;
    for (let b = 0; b < batches; b++) {
      const data = Array.from({ length: 8 * 100 }, () => u() * 2 - 1);
      const r = await fetch(`${url}/v2/models/demo-bandit/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [8, 100], data }] }) });
      const doc = (await r.json()) as { parameters: { event_ids: string } };
      const ids = doc.parameters.event_ids.split(',');
      const t0 = performance.now();
      const fb = await fetch(`${url}/v1/feedback`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: ids.map((id) => ({ event_id: id, reward: u() < 0.5 ? 1 : 0 })) }) });
      const out = (await fb.json()) as { results: Array<{ status?: string }> };
      check(fb.ok && out.results.every((x) => x.status === 'accepted'), `feedback not accepted: ${JSON.stringify(out)}`);
      const tAck = performance.now();
      acks.push(tAck - t0);
      acked += ids.length;
      while (learner!.cell.counters().events < acked) await new Promise((res) => setTimeout(res, 1));
      lat.push(performance.now() - tAck);
    }
    lat.sort((a, b) => a - b);
    acks.sort((a, b) => a - b);
    const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
    return { p50: q(lat, 0.5), p99: q(lat, 0.99), ackP50: q(acks, 0.5), ackP99: q(acks, 0.99), n: batches };
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runLearn(): Promise<Record<string, number>> {
  const quick = process.argv.includes('--quick');
  const n = quick ? 50_000 : 200_000;
  const rounds = quick ? 3 : 5;
  const small = learnerThroughput(32, 10, n, rounds);
  const demo = learnerThroughput(100, 5, n / 4, rounds);
  table(`Learner events applied per second in-process (LinUCB, mini-batches of 256, median of ${rounds} rounds; target >= 100,000)`,
    ['shape', 'learner events/s', 'native kernel alone', 'learner / kernel'],
    [['d = 32, 10 arms', Math.round(small.learner), Math.round(small.kernel), (small.learner / small.kernel).toFixed(2)],
      ['d = 100, 5 arms (demo-bandit)', Math.round(demo.learner), Math.round(demo.kernel), (demo.learner / demo.kernel).toFixed(2)]]);
  const f = await feedbackToState(quick);
  table(`Feedback acknowledged -> serving state includes it (demo-bandit, interval 100 ms, ${f.n} batches of 8 over HTTP)`,
    ['', 'p50 ms', 'p99 ms'],
    [['ack -> published state (target p99 < 1000)', f.p50.toFixed(1), f.p99.toFixed(1)], ['feedback POST round trip (baseline)', f.ackP50.toFixed(1), f.ackP99.toFixed(1)]]);
  return { learnerSmall: small.learner, learnerDemo: demo.learner, stateP99Ms: f.p99 };
}
