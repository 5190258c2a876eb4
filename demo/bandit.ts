/**
 * `npm run demo -- bandit [--url http://127.0.0.1:8000] [--steps 4000] [--seed 1] [--key K]`:
 * drives a seeded simulated environment against a running server's `demo-bandit` (LinUCB, 5
 * arms over the 100 features). Each step asks the server for a decision over HTTP, draws the
 * reward the environment gives for the arm it chose, and sends it back as feedback; every few
 * hundred steps it prints the reward collected beside what uniform random and the best single arm
 * would have collected on the same contexts, and the learner's state number.
 *
 * The environment: arm k's expected reward is sigmoid(theta_k . x) with theta_k seeded, and the
 * reward is 1 with that probability (clicks). Contexts are seeded too, so runs repeat.
 */
import { linearEnv, mulberry32 } from '../src/learn/bandit/simulation.js';

const ARMS = 5;
const DIMS = 100;

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

export async function runBanditDemo(args: string[]): Promise<void> {
  const url = arg(args, 'url', 'http://127.0.0.1:8000').replace(/\/$/, '');
  const steps = Number(arg(args, 'steps', '4000'));
  const seed = Number(arg(args, 'seed', '1'));
  const key = arg(args, 'key', process.env.SLUICE_ADMIN_KEY ?? '');
  const batch = 16;
  if (!Number.isInteger(steps) || steps < batch) throw new Error(`--steps must be an integer >= ${batch}`);
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) };
  // Linear scores scaled so that arms differ clearly after the sigmoid.
  const env = linearEnv(ARMS, DIMS, 0, seed);
  const coin = mulberry32(seed + 1000);
  const x = new Float32Array(DIMS);
  const p = (a: number) => sigmoid(3 * env.mean(x, a));
  let got = 0;
  let uniform = 0;
  const perArm = new Float64Array(ARMS);
  let state = 0;
  console.log(`demo-bandit at ${url}: ${steps} decisions in requests of ${batch} rows, rewards fed back as they come`);
  console.log('   step   reward   uniform  best-arm  reward/best  state');
  const every = Math.max(batch, Math.round(steps / 10 / batch) * batch);
  for (let t = 0; t < steps; t += batch) {
    const rows: Float32Array[] = [];
    for (let i = 0; i < batch; i++) {
      env.context(x);
      rows.push(Float32Array.from(x));
    }
    const data: number[] = [];
    for (const r of rows) data.push(...r);
    const res = await fetch(`${url}/v2/models/demo-bandit/infer`, { method: 'POST', headers, body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [batch, DIMS], data }] }) });
    const body = (await res.json()) as { parameters?: { event_ids?: string; state?: number }; outputs?: Array<{ name: string; data: number[] }>; error?: string; code?: string };
    if (!res.ok) throw new Error(`infer: HTTP ${res.status} ${body.code ?? ''} ${body.error ?? ''}`);
    const ids = (body.parameters?.event_ids ?? '').split(',');
    const actions = body.outputs!.find((o) => o.name === 'action')!.data;
    state = body.parameters?.state ?? state;
    const events = rows.map((r, i) => {
      x.set(r);
      const a = actions[i]!;
      for (let k = 0; k < ARMS; k++) perArm[k]! += p(k);
      let mean = 0;
      for (let k = 0; k < ARMS; k++) mean += p(k) / ARMS;
      uniform += mean;
      got += p(a);
      return { event_id: ids[i]!, reward: coin() < p(a) ? 1 : 0 };
    });
    const fb = await fetch(`${url}/v1/feedback`, { method: 'POST', headers, body: JSON.stringify({ events }) });
    if (!fb.ok) throw new Error(`feedback: HTTP ${fb.status} ${await fb.text()}`);
    const done = t + batch;
    if (done % every === 0 || done >= steps) {
      const best = Math.max(...perArm);
      console.log(`${String(done).padStart(7)} ${got.toFixed(1).padStart(8)} ${uniform.toFixed(1).padStart(9)} ${best.toFixed(1).padStart(9)} ${(got / best).toFixed(3).padStart(12)} ${String(state).padStart(6)}`);
    }
  }
  console.log('(expected rewards on the same contexts: what each strategy would collect on average)');
}
