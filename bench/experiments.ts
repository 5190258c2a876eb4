/**
 * `npm run bench -- experiments [--quick] [--database-url=postgres://...]`: analysing an
 * experiment with 1,000,000 logged units (100,000 with --quick), on PGlite and, when
 * SLUICE_TEST_DATABASE_URL or --database-url names a server, on PostgreSQL.
 *
 * The units are logged the way the server logs them, through the `decisions` and
 * `feedback_events` tables (their triggers keep the experiment's units and per-variant sums),
 * in statements of 10,000 rows: a decision per unit, feedback for 60% of them (rewards differ
 * by variant). Correctness first: the look's per-variant units, means and variances must equal
 * a recount over the units table. Then, interleaved over 5 rounds:
 *   - a look (src/control/experiments/analysis.ts): the per-variant sums, the weight periods,
 *     the statistics and the decision: what the analysis loop runs per experiment;
 *   - the baseline: one aggregate over every unit row (what a look would cost if it had to
 *     scan the units, the design the sums replace).
 * Also timed, interleaved: decisions logged per second into a model with no experiment, and
 * into the experiment's model, for new units and for units already exposed (the triggers'
 * cost on the decision path). These go the way the data plane's decisions go: built in chunks
 * of 256 by DecisionChunkBuilder and written by DecisionLog as `decision_chunks` rows, whose
 * trigger exposes the units (migration 012); the bulk load above uses `decisions` rows, whose
 * trigger makes the same units, because generate_series makes a million of them in seconds.
 */
import { look } from '../src/control/experiments/analysis.js';
import { parseExperiment, experimentJson } from '../src/control/experiments/spec.js';
import { getExperiment } from '../src/control/experiments/store.js';
import type { Db } from '../src/registry/db.js';
import { DecisionChunkBuilder, chunkVariant } from '../src/learn/decision-chunk.js';
import { DecisionLog } from '../src/learn/decision-log.js';
import { lastEventIdMs } from '../src/learn/event-id.js';
import { pglite, postgres, type Backend } from './backends.js';
import { check, median, table } from './util.js';

const CHUNK = 10_000;
const SPEC = parseExperiment({
  name: 'bench-exp', model: 'bench-exp',
  variants: [{ name: 'control', version: '1', weight: 0.5 }, { name: 'treatment', version: '2', weight: 0.5 }],
  primary: { name: 'reward', kind: 'mean' }, secondary: [{ name: 'total', kind: 'sum' }, { name: 'conversion', kind: 'rate' }],
  min_units: 100,
});

async function setUp(db: Db): Promise<number> {
  await db.query("INSERT INTO models (name) VALUES ('bench-exp'), ('bench-none') ON CONFLICT DO NOTHING");
  const [row] = await db.query<{ id: string }>(
    "INSERT INTO experiments (name, model, spec, status, created_by) VALUES ('bench-exp', 'bench-exp', $1::jsonb, 'running', 'bench') RETURNING id::text",
    [JSON.stringify(experimentJson(SPEC))],
  );
  const id = Number(row!.id);
  await db.query("INSERT INTO experiment_periods (model, route_gen, experiment_id, weights, per_event) VALUES ('bench-exp', 1, $1, '[0.5, 0.5]', false)", [id]);
  return id;
}

/** Decisions for units [from, to) of `model` (unit ids `unit` + g) as `decisions` rows (the bulk load): variant by parity. */
function logDecisions(db: Db, model: string, from: number, to: number, unit = 'u'): Promise<unknown> {
  return db.query(
    `INSERT INTO decisions (event_id, at, model, variant, version, unit_id, propensity, route_gen)
     SELECT $1 || '-' || $4 || g, now(), $1, CASE WHEN g % 2 = 0 THEN 'control' ELSE 'treatment' END,
            CASE WHEN g % 2 = 0 THEN '1' ELSE '2' END, $4 || g, 0.5, 1
       FROM generate_series($2::int, $3::int - 1) g
     ON CONFLICT (event_id) DO NOTHING`,
    [model, from, to, unit],
  );
}

/**
 * Decisions for units [from, to) of `model` as the server logs them: chunks of 256 from a
 * thread's builder, one INSERT for all of them (DecisionLog, batch size CHUNK), committed.
 */
async function logChunks(db: Db, model: string, from: number, to: number, unit: string): Promise<void> {
  const log = new DecisionLog(db, { capacity: to - from, batchSize: CHUNK, flushMs: 60_000, recentBytes: 0 });
  const variants = [chunkVariant(model, 'control', '1', 1), chunkVariant(model, 'treatment', '2', 1)];
  const b = new DecisionChunkBuilder();
  for (let g = from; g < to; g++) {
    const v = g % 2;
    b.add(b.nextId(), lastEventIdMs(), variants[v]!, unit + g, 0.5, undefined);
    if (b.n === 256) check(log.offerChunk(b.take()!), 'a chunk was dropped below capacity');
  }
  if (b.n > 0) check(log.offerChunk(b.take()!), 'a chunk was dropped below capacity');
  await log.flush();
  check(log.stats.logged === to - from && log.stats.failedBatches === 0, `decisions written: ${log.stats.logged} of ${to - from}`);
  await log.close();
}

/** Feedback for 60% of units [from, to): reward ~ 0.3 + 0.02 * treatment + noise, deterministic. */
function logFeedback(db: Db, from: number, to: number): Promise<unknown> {
  return db.query(
    `INSERT INTO feedback_events (event_id, reward, at, received_at, joined, decided_at, model, variant, version, propensity, route_gen, decision_unit_id)
     SELECT 'bench-exp-u' || g, ((g::bigint * 7919) % 1000) / 1000.0 * 0.6 + CASE WHEN g % 2 = 0 THEN 0 ELSE 0.02 END,
            now(), now(), true, now(), 'bench-exp', CASE WHEN g % 2 = 0 THEN 'control' ELSE 'treatment' END,
            CASE WHEN g % 2 = 0 THEN '1' ELSE '2' END, 0.5, 1, 'u' || g
       FROM generate_series($1::int, $2::int - 1) g WHERE g % 5 < 3
     ON CONFLICT (event_id) DO NOTHING`,
    [from, to],
  );
}

const SCAN = `SELECT variant, count(*) AS units, count(*) FILTER (WHERE events > 0) AS with_feedback,
    avg(reward_sum / events) FILTER (WHERE events > 0) AS mean, var_samp(reward_sum / events) FILTER (WHERE events > 0) AS variance,
    avg(reward_sum) AS sum_mean, var_samp(reward_sum) AS sum_variance, count(*) FILTER (WHERE converted) AS converted
  FROM experiment_units WHERE experiment_id = $1 GROUP BY variant`;

function close(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

async function run(b: Backend, units: number): Promise<Array<Array<string | number>>> {
  const id = await setUp(b.db);
  const t0 = performance.now();
  for (let from = 0; from < units; from += CHUNK) {
    await logDecisions(b.db, 'bench-exp', from, Math.min(units, from + CHUNK));
    await logFeedback(b.db, from, Math.min(units, from + CHUNK));
  }
  const loadS = (performance.now() - t0) / 1000;
  console.log(`experiments (${b.name}): ${units.toLocaleString('en')} units logged (decisions + 60% feedback) in ${loadS.toFixed(1)} s`);

  // Correctness: the look's figures equal a recount over the units.
  const e = await getExperiment(b.db, 'bench-exp');
  const l = await look(b.db, e);
  const recount = await b.db.query<Record<string, unknown>>(SCAN, [id]);
  const variants = l.results.variants as Array<{ name: string; units: number; with_feedback: number }>;
  check(variants.reduce((a, v) => a + v.units, 0) === units, `the look counts ${units} units`);
  const metrics = l.results.metrics as Array<{ name: string; variants: Array<{ name: string; n: number; mean: number; sd: number | null }> }>;
  for (const r of recount) {
    const name = r.variant as string;
    const v = variants.find((x) => x.name === name)!;
    check(v.units === Number(r.units), `${name}: units ${v.units} = recount ${String(r.units)}`);
    const reward = metrics[0]!.variants.find((x) => x.name === name)!;
    check(reward.n === Number(r.with_feedback), `${name}: units with feedback`);
    check(close(reward.mean, Number(r.mean)), `${name}: mean reward ${reward.mean} = ${String(r.mean)}`);
    check(close(reward.sd! ** 2, Number(r.variance)), `${name}: reward variance ${reward.sd! ** 2} = ${String(r.variance)}`);
    const total = metrics[1]!.variants.find((x) => x.name === name)!;
    check(close(total.mean, Number(r.sum_mean)) && close(total.sd! ** 2, Number(r.sum_variance)), `${name}: total reward per unit`);
    const conversion = metrics[2]!.variants.find((x) => x.name === name)!;
    check(close(conversion.mean * v.units, Number(r.converted)), `${name}: conversions`);
  }
  check(l.decision.action !== 'continue' || l.decision.reason.length > 0, 'a decision with its reason');
  console.log(`experiments (${b.name}): correctness OK (per-variant units, means and variances equal a recount over ${units.toLocaleString('en')} units; decision: ${l.decision.action})`);

  // Interleaved: the look against the scan it replaces.
  const lookMs: number[] = [];
  const scanMs: number[] = [];
  for (let round = 0; round < 5; round++) {
    lookMs.push(await timed(() => look(b.db, e)));
    scanMs.push(await timed(() => b.db.query(SCAN, [id])));
  }
  // The triggers on the decision path: 10,000 decisions into the experiment's model (new units)
  // against 10,000 into a model with none, interleaved.
  // And 10,000 decisions of units already exposed (a unit's later requests: the common case).
  const withExp: number[] = [];
  const repeat: number[] = [];
  const without: number[] = [];
  for (let round = 0; round < 5; round++) {
    const base = units + round * CHUNK;
    withExp.push(await timed(() => logChunks(b.db, 'bench-exp', base, base + CHUNK, 'x')));
    repeat.push(await timed(() => logChunks(b.db, 'bench-exp', round * CHUNK, (round + 1) * CHUNK, 'u')));
    without.push(await timed(() => logChunks(b.db, 'bench-none', base, base + CHUNK, 'x')));
  }
  // The decisions above reached the experiment: each new unit once, the repeats none.
  const after = await look(b.db, e);
  const counted = (after.results.variants as Array<{ units: number }>).reduce((a, v) => a + v.units, 0);
  check(counted === units + 5 * CHUNK, `after the timed decisions the look counts ${units + 5 * CHUNK} units (got ${counted})`);
  const look50 = median(lookMs);
  const scan50 = median(scanMs);
  return [[
    b.name, units, look50, scan50, `${(look50 / scan50).toFixed(3)}x`,
    Math.round(CHUNK / (median(without) / 1000)),
    Math.round(CHUNK / (median(withExp) / 1000)), `${(median(without) / median(withExp)).toFixed(2)}x`,
    Math.round(CHUNK / (median(repeat) / 1000)), `${(median(without) / median(repeat)).toFixed(2)}x`,
  ]];
}

export async function runExperiments(opts: { quick?: boolean } = {}): Promise<void> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const units = quick ? 100_000 : 1_000_000;
  const url = process.argv.find((a) => a.startsWith('--database-url='))?.slice('--database-url='.length) ?? process.env.SLUICE_TEST_DATABASE_URL;
  const backends: Array<() => Promise<Backend>> = [pglite];
  if (url) backends.push(() => postgres(url));
  else console.log('experiments: PostgreSQL skipped (set SLUICE_TEST_DATABASE_URL or --database-url=)');
  const rows: Array<Array<string | number>> = [];
  for (const open of backends) {
    const b = await open();
    try {
      rows.push(...(await run(b, units)));
    } finally {
      await b.close();
    }
  }
  table('experiments: one look (median of 5, ms) vs a scan of every unit row; decisions/s (10,000 per statement, median of 5) into a model with no experiment, into a running one (new units, then units already exposed), and the ratios to none',
    ['database', 'units', 'look ms', 'scan ms', 'look/scan', 'dec/s none', 'new units', 'ratio', 'exposed units', 'ratio'], rows);
}
