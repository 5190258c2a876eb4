/**
 * Issue #13's bandit figures, `npm run bench -- bandits [--quick]`:
 *  1. the native kernels (bench/bandit-kernels.ts): LinUCB score and select per decision;
 *  2. seeded simulations, through the serving policy and the online learner: cumulative regret
 *     against the best arm per context, beside uniform random and the best fixed arm;
 *  3. demo-bandit over HTTP: the highest rate holding p99 < 10 ms with 0 errors, as a ratio to
 *     demo-logistic on the same server in the same run (rounds interleaved), target >= 0.7 (steps
 *     x1.25, then two bisections: a ratio is known to within ~6%, not quantised to 0.64/0.8); and,
 *     as a second baseline, demo-logistic behind a one-variant route that logs features: an
 *     answer that also writes a decision row with its 100-feature context, as every bandit
 *     answer does (what the bandit costs beyond its decision log). After a search that wrote
 *     decisions, the next one waits until the decision log has written them all (its pending
 *     gauge at 0): a backlog left on the database thread would otherwise be measured against
 *     whichever search came next (demo-logistic's, in every round).
 *  With SLUICE_BENCH_ALSO_NODE_FLAGS and/or SLUICE_BENCH_ALSO_ENV, a second server started with
 *  those node/V8 flags and settings is measured in the same rounds, interleaved (an A/B in one run).
 * Correctness first: every simulation's regret is checked to grow sublinearly and LinUCB to beat
 * the best fixed arm; demo-bandit's answers are checked (arm in range, propensity, event id).
 */
import { randomBytes } from 'node:crypto';
import { findMax, type FindMaxResult, type LoadOptions } from '../loadtest/cli.js';
import { startSluiceProcess, type SluiceProcess } from '../loadtest/sluice-process.js';
import { banditManifest, bernoulliEnv, linearEnv, simulate, type SimulationResult } from '../src/learn/bandit/simulation.js';
import { runBanditKernels } from './bandit-kernels.js';
import { check, envPairs, median, table } from './util.js';

const HTTP_TARGET = 0.7;

function simulations(quick: boolean): void {
  const T = quick ? 5000 : 20_000;
  const rates = [0.1, 0.2, 0.3, 0.45, 0.5];
  const runs: Array<[string, SimulationResult]> = [
    ['Thompson, Bernoulli arms ' + rates.join('/'), simulate(banditManifest('thompson', 5, 1, { reward: 'bernoulli' }), bernoulliEnv(rates, 1), T, { seed: 1 })],
    ['epsilon-greedy, epsilon 0.2 x 200/(200 + t), Bernoulli arms', simulate(banditManifest('epsilon-greedy', 5, 1, { epsilon: { type: 'inverse', epsilon: 0.2, scale: 200 } }), bernoulliEnv(rates, 1), T, { seed: 1 })],
    ['epsilon-greedy, constant 0.1 (linear regret by design)', simulate(banditManifest('epsilon-greedy', 5, 1, { epsilon: 0.1 }), bernoulliEnv(rates, 1), T, { seed: 1 })],
    ['LinUCB alpha 0.5, linear 5 arms x 8 features', simulate(banditManifest('linucb', 5, 8, { alpha: 0.5 }), linearEnv(5, 8, 0.1, 7), T, { seed: 3 })],
    ['linear Thompson v 0.2, same environment', simulate(banditManifest('thompson', 5, 8, { reward: 'linear', v: 0.2, propensity_draws: 20 }), linearEnv(5, 8, 0.1, 7), T, { seed: 5 })],
  ];
  for (const [name, r] of runs) {
    const half = r.regret.find((p) => p.step === T / 2)!.regret;
    const final = r.regret.at(-1)!.regret;
    // Constant exploration pays a fixed share of every decision: its regret is linear.
    if (!name.includes('constant')) check(final / half < 1.5, `${name}: regret grows about linearly (${half.toFixed(1)} at T/2, ${final.toFixed(1)} at T)`);
    check(r.reward > r.uniform, `${name}: no better than uniform random`);
  }
  check(runs[3]![1].reward > runs[3]![1].bestFixed, 'LinUCB does not beat the best fixed arm');
  table(`Seeded simulations, ${T} decisions, feedback applied every 10 (expected rewards; regret against the best arm per context)`,
    ['policy', 'regret T/4', 'regret T/2', 'regret T', 'reward', 'uniform', 'best fixed arm'],
    runs.map(([name, r]) => [name, r.regret.find((p) => p.step === T / 4)!.regret.toFixed(1), r.regret.find((p) => p.step === T / 2)!.regret.toFixed(1), r.regret.at(-1)!.regret.toFixed(1), r.reward.toFixed(0), r.uniform.toFixed(0), r.bestFixed.toFixed(0)]));
}

interface Server {
  label: string;
  sluice: SluiceProcess;
  route: (on: boolean) => Promise<void>;
  /** Waits until the decision log has written everything (seconds it took). */
  drained: () => Promise<number>;
  bandit: FindMaxResult[];
  logistic: FindMaxResult[];
  logged: FindMaxResult[];
  /** Seconds each decision-writing phase's backlog took to drain after it. */
  drainS: number[];
}

async function startServer(label: string, key: string, nodeFlags: string[], env: Record<string, string> = {}): Promise<Server> {
  const sluice = await startSluiceProcess({ env: { SLUICE_MODELS: 'demo-logistic,demo-bandit', SLUICE_ADMIN_KEY: key, ...env }, nodeFlags });
  const route = async (on: boolean) => {
    const r = await fetch(`${sluice.http}/v1/admin/models/demo-logistic/route`, {
      method: on ? 'PUT' : 'DELETE', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(on ? { variants: [{ name: 'all', version: '1', weight: 1 }], assignment: 'random', log_features: true } : {}),
    });
    check(r.ok, `route ${on ? 'set' : 'clear'}: HTTP ${r.status} ${await r.text()}`);
  };
  const drained = async (): Promise<number> => {
    const t0 = Date.now();
    for (;;) {
      const text = await (await fetch(`${sluice.http}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
      const m = /^sluice_decisions_pending (\d+)/m.exec(text);
      check(m !== null, 'no sluice_decisions_pending in /metrics');
      if (Number(m![1]) === 0) return (Date.now() - t0) / 1000;
      check(Date.now() - t0 < 120_000, `the decision log did not drain in 120 s (${m![1]} pending)`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const body = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: Array.from({ length: 100 }, (_, i) => Math.sin(i)) }] };
  const res = await fetch(`${sluice.http}/v2/models/demo-bandit/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const doc = (await res.json()) as { parameters?: { event_id?: string; action?: number; propensity?: number }; outputs?: Array<{ name: string; data: number[] }> };
  const action = doc.outputs?.find((o) => o.name === 'action')?.data[0];
  check(res.ok && action !== undefined && action >= 0 && action < 5 && action === doc.parameters?.action && typeof doc.parameters?.event_id === 'string' && (doc.parameters?.propensity ?? 0) > 0, `demo-bandit answer: ${JSON.stringify(doc)}`);
  return { label, sluice, route, drained, bandit: [], logistic: [], logged: [], drainS: [] };
}

/**
 * The HTTP figures. SLUICE_BENCH_ALSO_NODE_FLAGS (e.g. "--min-semi-space-size=8") and
 * SLUICE_BENCH_ALSO_ENV (ENV=VALUE pairs, e.g. "SLUICE_CONTROL_THREAD=dedicated") start a second server with
 * those node/V8 flags and settings and measure it in the same rounds, interleaved (an A/B in
 * one run); SLUICE_BENCH_ROUNDS overrides the rounds (default 3, --quick 1).
 */
async function overHttp(quick: boolean): Promise<Record<string, number>> {
  const key = `sk_bench_${randomBytes(24).toString('hex')}`;
  const also = (process.env.SLUICE_BENCH_ALSO_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const alsoEnv = envPairs(process.env.SLUICE_BENCH_ALSO_ENV ?? '', 'SLUICE_BENCH_ALSO_ENV');
  const servers: Server[] = [await startServer('defaults', key, [])];
  const figures: Record<string, number> = {};
  try {
    if (also.length > 0 || Object.keys(alsoEnv).length > 0) {
      const label = [...Object.entries(alsoEnv).map(([k, v]) => `${k}=${v}`), ...(also.length > 0 ? [`node ${also.join(' ')}`] : [])].join(' ');
      servers.push(await startServer(label, key, also, alsoEnv));
    }
    const base: Omit<LoadOptions, 'url' | 'model'> = {
      protocol: 'http', batch: 1, binary: false, rate: 1000, duration: 5, connections: 16, workers: 1,
      findMax: true, sloMs: 10, stepDuration: quick ? 2 : 4, stepFactor: 1.25, stepRetries: 1, refine: 2, quiet: true,
    };
    const rounds = Number(process.env.SLUICE_BENCH_ROUNDS ?? (quick ? 1 : 3));
    check(Number.isInteger(rounds) && rounds >= 1, `SLUICE_BENCH_ROUNDS must be a whole number >= 1, not ${process.env.SLUICE_BENCH_ROUNDS}`);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? ['bandit', 'logistic', 'logged'] as const : ['logged', 'logistic', 'bandit'] as const;
      for (const what of order) {
        for (const sv of r % 2 === 0 ? servers : [...servers].reverse()) {
          if (what === 'bandit') sv.bandit.push(await findMax({ ...base, url: sv.sluice.http, model: 'demo-bandit' }));
          else if (what === 'logistic') sv.logistic.push(await findMax({ ...base, url: sv.sluice.http, model: 'demo-logistic' }));
          else {
            await sv.route(true);
            sv.logged.push(await findMax({ ...base, url: sv.sluice.http, model: 'demo-logistic' }));
            await sv.route(false);
          }
          // A phase that writes decisions can leave the database thread a backlog for seconds
          // after it (every search's last steps run above the rate it keeps up with): the next
          // phase, on this server or the other, starts once it is written, not while it competes
          // for the cores.
          if (what !== 'logistic') sv.drainS.push(await sv.drained());
        }
      }
    }
    for (const [i, sv] of servers.entries()) {
      const { bandit, logistic, logged } = sv;
      // A search that failed at its first step (base.rate) found no rate at all: the machine did
      // not hold the SLO even there (seen on a slow, shared VM, 2026-12-07: demo-logistic
      // "capacity" 1,182 req/s, a ratio of 3.05 and a division by 0 printed as the run's figures). Such a round has no ratio; the medians are over the other rounds.
      const whole = bandit.map((_, j) => bandit[j]!.maxRate > 0 && logistic[j]!.maxRate > 0 && logged[j]!.maxRate > 0);
      const kept = (runs: FindMaxResult[]) => runs.filter((_, j) => whole[j]).map((x) => x.maxRate);
      const f = { loggedMax: 0, banditMax: 0, logisticMax: 0, ratio: 0 };
      const anyWhole = whole.some((w) => w);
      if (anyWhole) {
        f.loggedMax = median(kept(logged));
        f.banditMax = median(kept(bandit));
        f.logisticMax = median(kept(logistic));
        f.ratio = f.banditMax / f.logisticMax;
        // The first server's figures are the issue's; a second one's carry its label's prefix.
        for (const [k, v] of Object.entries(f)) figures[i === 0 ? k : `also.${k}`] = v;
      }
      table(`Highest rate holding p99 < 10 ms with 0 errors, single-row JSON, one server (${sv.label}; ${rounds} interleaved round(s), steps x1.25 then bisected twice: to within x1.057)`,
        ['round', 'demo-bandit (LinUCB 5 arms x 100)', 'demo-logistic', 'ratio', 'demo-logistic routed, logging features', 'bandit / routed'],
        bandit.map((b, j) => [String(j + 1), Math.round(b.maxRate), Math.round(logistic[j]!.maxRate), logistic[j]!.maxRate > 0 ? (b.maxRate / logistic[j]!.maxRate).toFixed(2) : '-',
          Math.round(logged[j]!.maxRate), logged[j]!.maxRate > 0 ? (b.maxRate / logged[j]!.maxRate).toFixed(2) : '-']));
      // Why each search stopped: the last run at a rate above the one it reports (the step or
      // bisection that failed every attempt: p99, refusals, errors). The figure above says how
      // high, this says what held it (latency, or admission control refusing).
      const stops = (name: string, runs: FindMaxResult[]) => runs.map((x, j) => {
        const st = x.steps.filter((s2) => !s2.pass && s2.rate > x.maxRate).at(-1);
        return [name, String(j + 1), String(Math.round(x.maxRate)), st ? String(Math.round(st.rate)) : '-', st ? st.summary.latencyMs.p99.toFixed(1) : '-', st ? String(st.summary.refused) : '-', st ? String(st.summary.errorCount) : '-'];
      });
      table(`Where each search stopped (${sv.label}): its last failed run above the rate it reports`,
        ['phase', 'round', 'highest passing req/s', 'failing run req/s', 'p99 ms', 'refused', 'errors'],
        [...stops('demo-bandit', bandit), ...stops('demo-logistic', logistic), ...stops('demo-logistic logging features', logged)]);
      console.log(`${sv.label}: the decision log's backlog after each deciding search drained in ${sv.drainS.map((x) => x.toFixed(1)).join(' / ')} s (waited for before the next search)`);
      const partial = whole.filter((w) => !w).length;
      if (partial > 0) console.log(`${sv.label}: ${partial} of ${rounds} round(s) left out: a search in it failed at its first step (${base.rate} req/s), so the machine held no rate there (see above)`);
      if (!anyWhole) console.log(`${sv.label}: no figure: no round had a rate from all three searches`);
      else console.log(`${sv.label}: demo-bandit / demo-logistic, medians${partial > 0 ? ' of the whole rounds' : ''}: ${Math.round(f.banditMax)} / ${Math.round(f.logisticMax)} = ${f.ratio.toFixed(2)} (target >= ${HTTP_TARGET}); demo-bandit / demo-logistic logging a decision with features: ${Math.round(f.banditMax)} / ${Math.round(f.loggedMax)} = ${(f.banditMax / f.loggedMax).toFixed(2)}`);
    }
  } finally {
    for (const sv of servers) {
      await sv.sluice.stop();
    }
  }
  return figures;
}

export async function runBandits(): Promise<Record<string, number>> {
  const quick = process.argv.includes('--quick');
  await runBanditKernels();
  simulations(quick);
  return overHttp(quick);
}
