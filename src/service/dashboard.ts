/**
 * The dashboard's data (issue #16): one function builds a snapshot of the whole server, as the
 * page shows it, on the control plane (main thread). It is built only when asked, and at most
 * once per interval however many I/O threads ask (each asks once per interval while one of its
 * viewers is connected: src/service/dashboard-feed.ts), so with nobody watching it costs nothing,
 * and while someone watches it reads only what is recorded anyway: the windows of every I/O
 * thread (merged), the registry and the learners.
 *
 * Series over time (per version: request rate, error rate, p50/p95/p99 of the last window; per
 * experiment: the p-values of each look) are kept here in memory, a point per build: they grow
 * while someone watches and stop (with a gap) while nobody does. Sections are built apart: one
 * that fails (the database away) is reported in `problems` and the others still show.
 *
 * The answer is the snapshot as JSON text, serialised once for every thread and viewer.
 */
import { toSluiceError } from '../errors.js';
import type { WindowStats } from '../metrics/windows.js';
import type { PublishedRoute } from '../routing/plane-route.js';
import type { OnlineLearner } from '../learn/online-learner.js';
import { BanditLearner } from '../learn/bandit-learner.js';
import type { AdminService } from './admin.js';
import { DRIFT_STALE_MS, type ModelDriftReport } from '../analyze/drift-monitor.js';

/** The window each version's live figures are read over (s): the current 10 s bucket and the one before it. */
export const DASHBOARD_WINDOW_S = 10;
/** Points kept per series (at 1 s, the last 5 minutes watched). */
export const SERIES_POINTS = 300;
/** Finished deployments and stopped experiments shown beside the active ones, newest first. */
const RECENT_FINISHED = 5;
/** Alerts that are not firing (pending, resolved) shown, newest first. */
const RECENT_ALERTS = 20;

/** What of the engine the dashboard reads (src/service/engine.ts). */
export interface DashboardEngine {
  servedVersions(): Array<{ model: string; version: string }>;
  liveVersions(model: string): { versions: string[]; default?: string; route?: PublishedRoute };
  windowStats(model: string, version: string, seconds: number): Promise<WindowStats>;
  readonly routeBandits: { weights(model: string): { weights: number[]; rewards: number[]; rewardSums: number[] } | undefined };
  readonly learners: { get(model: string, version: string): OnlineLearner | undefined };
  /** The drift monitor, which the engine feeds with every thread's samples each second. */
  readonly drift: { report(model: string, maxAgeMs?: number): ModelDriftReport };
}

/** What the I/O threads ask the control plane for (forwarded by message from other threads). */
export interface DashboardService {
  /** The snapshot as JSON text: rebuilt when the last one is older than the interval. */
  snapshot(): Promise<string>;
}

export const DASHBOARD_OPERATIONS = ['snapshot'] as const satisfies ReadonlyArray<keyof DashboardService>;

type Admin = Pick<AdminService, 'getRoute' | 'listDeployments' | 'showDeployment' | 'listExperiments' | 'experimentResults' | 'showExperiment' | 'listAlerts'>;

export interface DashboardOptions {
  admin: Admin;
  engine: DashboardEngine;
  intervalMs: number;
  now?: () => number;
}

/** A version's figures now (rates per second, latency in ms over the successful requests). */
interface Point {
  t: number;
  rate: number;
  error_rate: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Column series (uPlot's data layout: one array per field, x first). */
type Series<K extends string> = { t: number[] } & Record<K, Array<number | null>>;

function pushCapped<T>(xs: T[], x: T): void {
  xs.push(x);
  if (xs.length > SERIES_POINTS) xs.splice(0, xs.length - SERIES_POINTS);
}

type Row = Record<string, unknown>;

type MetricJson = { kind: string; variants: Array<{ n: number; mean: number | null; sd?: number | null; ci?: unknown }> };

/**
 * Experiment results with each variant's own confidence interval added to each metric (what
 * the page draws as intervals beside the means): Student t for means, Wilson for rates, none for
 * latency (its results carry no spread). The statistics load here on first use, as the analysis
 * does: a server without experiments never holds them.
 */
async function withVariantIntervals(results: Row | null): Promise<Row | null> {
  if (!results || !Array.isArray(results.metrics)) return results;
  const { meanInterval, wilsonInterval } = await import('../analyze/variant-interval.js');
  const alpha = typeof results.alpha === 'number' ? results.alpha : 0.05;
  const metrics = (results.metrics as MetricJson[]).map((m) => ({
    ...m,
    variants: m.variants.map((v) => {
      let ci = null;
      if (v.mean !== null && v.n > 0) {
        if (m.kind === 'mean' || m.kind === 'sum') ci = typeof v.sd === 'number' ? meanInterval({ n: v.n, mean: v.mean, variance: v.sd * v.sd }, alpha) : null;
        else if (m.kind === 'rate' || m.kind === 'error_rate') ci = wilsonInterval({ n: v.n, successes: Math.round(v.mean * v.n) }, alpha);
      }
      return { ...v, ci };
    }),
  }));
  return { ...results, metrics };
}

export function dashboardService(o: DashboardOptions): DashboardService {
  const now = o.now ?? Date.now;
  const versionSeries = new Map<string, Series<Exclude<keyof Point, 't'>>>();
  /** Per experiment: time, then per `metric/treatment` the fixed-horizon and always-valid p-values. */
  const looks = new Map<string, { t: number[]; p: Record<string, Array<number | null>>; seq_p: Record<string, Array<number | null>> }>();
  /** A stopped experiment's last results do not change: read once. */
  const stoppedResults = new Map<string, Row | null>();
  /** Finished deployments with their events, by id (they change no more). */
  const finished = new Map<number, Row>();
  /** The admin API's answer for each model's route in force, by the engine's generation of it. */
  const routes = new Map<string, { gen: number; answer: Row }>();
  let last: { at: number; json: string } | undefined;
  let building: Promise<string> | undefined;

  const problems: Array<{ section: string; code: string; message: string }> = [];
  async function section<T>(name: string, fallback: T, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      const err = toSluiceError(e);
      problems.push({ section: name, code: err.code, message: err.message });
      return fallback;
    }
  }

  async function versionPanel(model: string, version: string, t: number): Promise<Row> {
    let stats: WindowStats | undefined;
    try {
      stats = await o.engine.windowStats(model, version, DASHBOARD_WINDOW_S);
    } catch (e) {
      // A version no thread has answered yet has no window: it shows as idle.
      if (toSluiceError(e).code !== 'VERSION_NOT_FOUND') throw e;
    }
    const spanS = stats ? Math.max(1, stats.toMs - stats.fromMs) / 1000 : DASHBOARD_WINDOW_S;
    const p: Point = {
      t,
      rate: stats ? stats.requests / spanS : 0,
      error_rate: stats && stats.requests > 0 ? stats.errors / stats.requests : 0,
      p50: stats?.latency.p50 ?? 0,
      p95: stats?.latency.p95 ?? 0,
      p99: stats?.latency.p99 ?? 0,
    };
    const key = `${model}\u0000${version}`;
    let s = versionSeries.get(key);
    if (!s) versionSeries.set(key, (s = { t: [], rate: [], error_rate: [], p50: [], p95: [], p99: [] }));
    pushCapped(s.t, t / 1000);
    for (const k of ['rate', 'error_rate', 'p50', 'p95', 'p99'] as const) pushCapped(s[k], stats && (k === 'rate' || k === 'error_rate' || stats.latency.count > 0) ? p[k] : null);
    return {
      version,
      window: stats ? { from_ms: stats.fromMs, to_ms: stats.toMs, requests: stats.requests, errors: stats.errors, errors_by_code: stats.errorsByCode } : null,
      now: p,
      series: s,
      bandit: banditArms(model, version),
    };
  }

  /** A bandit version's arms: share of the feedback learned, and cumulative reward. */
  function banditArms(model: string, version: string): Row | null {
    const l = o.engine.learners.get(model, version);
    if (!(l instanceof BanditLearner)) return null;
    const { feedback, rewardSums } = l.arms();
    const total = feedback.reduce((a, b) => a + b, 0);
    return {
      kind: l.config.kind,
      arms: feedback.map((n, i) => ({ arm: i, feedback: n, share: total > 0 ? n / total : null, reward_sum: rewardSums[i], reward_mean: n > 0 ? rewardSums[i]! / n : null })),
    };
  }

  async function modelPanel(model: string, versions: string[], t: number): Promise<Row> {
    const live = o.engine.liveVersions(model);
    const route = await section(`route ${model}`, null, () => routeOf(model, live.route));
    const spec = route?.route as { variants: Array<{ name: string; version: string; weight: number }>; assignment: string } | null | undefined;
    const bandit = spec?.assignment === 'bandit' ? o.engine.routeBandits.weights(model) : undefined;
    const shares = spec
      ? spec.variants.map((v, i) => ({
        variant: v.name, version: v.version,
        share: bandit ? bandit.weights[i] ?? null : v.weight,
        ...(bandit ? { rewards: bandit.rewards[i] ?? 0, reward_sum: bandit.rewardSums[i] ?? 0 } : {}),
      }))
      : live.default !== undefined ? [{ variant: 'default', version: live.default, share: 1 }] : [];
    return {
      model,
      default_version: live.default ?? null,
      route,
      shares,
      versions: await Promise.all(versions.map((v) => section(`window ${model}@${v}`, { version: v, now: null, series: null, bandit: null }, () => versionPanel(model, v, t)))),
      // As evaluated up to DRIFT_STALE_MS ago (the alerts' staleness too): evaluating every
      // feature's PSI and KS each second would cost serving (bench/dashboard.ts).
      drift: await section(`drift ${model}`, null, async () => o.engine.drift.report(model, DRIFT_STALE_MS)),
    };
  }

  /**
   * The route in force here as the admin API shows it (owner, generation, who set it): read
   * from the registry only when the route in force changes, not on every build.
   */
  async function routeOf(model: string, inForce: PublishedRoute | undefined): Promise<Row> {
    if (!inForce) {
      routes.delete(model);
      return { model, route: null };
    }
    const have = routes.get(model);
    if (have && have.gen === inForce.gen) return have.answer;
    const answer = (await o.admin.getRoute(model)) as Row;
    // Cached only when it is the one in force (a change may be on its way here).
    if (answer.generation === inForce.registryGen) routes.set(model, { gen: inForce.gen, answer });
    return answer;
  }

  async function deployments(): Promise<Row[]> {
    const all = (await o.admin.listDeployments()) as Array<Row & { id: number; status: string }>;
    all.sort((a, b) => b.id - a.id);
    const active = all.filter((d) => d.status === 'running' || d.status === 'paused');
    const shown = [...active, ...all.filter((d) => !active.includes(d)).slice(0, RECENT_FINISHED)];
    // What is no longer shown is no longer kept.
    for (const id of finished.keys()) if (!shown.some((d) => d.id === id)) finished.delete(id);
    return Promise.all(shown.map(async (d) => {
      // A finished deployment changes no more: its events are read once.
      const done = finished.get(d.id);
      if (done) return done;
      const full = (await o.admin.showDeployment(String(d.id))) as Row & { status: string };
      if (full.status !== 'running' && full.status !== 'paused') finished.set(d.id, full);
      return full;
    }));
  }

  /** Adds a look of the analysis loop (once: `t` is when it looked) to the experiment's history. */
  function recordLook(name: string, t: number, results: Row): Row {
    let h = looks.get(name);
    if (!h) looks.set(name, (h = { t: [], p: {}, seq_p: {} }));
    if (h.t.length > 0 && h.t[h.t.length - 1]! >= t / 1000) return h;
    const n = h.t.length;
    pushCapped(h.t, t / 1000);
    const metrics = (results.metrics ?? []) as Array<{ name: string; treatments: Array<{ variant: string; p: number | null; seq_p: number | null }> }>;
    for (const m of metrics) {
      for (const tr of m.treatments) {
        const key = `${m.name}/${tr.variant}`;
        for (const [field, value] of [['p', tr.p], ['seq_p', tr.seq_p]] as const) {
          // A series that starts late is padded: every series has one value per look.
          const xs = (h[field][key] ??= Array.from({ length: n }, () => null));
          pushCapped(xs, value);
        }
      }
    }
    return h;
  }

  async function experiments(t: number): Promise<Row[]> {
    const all = (await o.admin.listExperiments()) as Array<Row & { name: string; status: string; started_at: string }>;
    all.sort((a, b) => b.started_at.localeCompare(a.started_at));
    const running = all.filter((e) => e.status === 'running');
    const stopped = all.filter((e) => e.status !== 'running').slice(0, RECENT_FINISHED);
    // What is no longer shown is no longer kept.
    const shown = new Set([...running, ...stopped].map((e) => e.name));
    for (const m of [looks, stoppedResults]) for (const name of m.keys()) if (!shown.has(name)) m.delete(name);
    const out: Row[] = [];
    for (const e of running) {
      out.push(await section<Row>(`experiment ${e.name}`, { ...e, results: null, looks: null }, async () => {
        // The analysis loop's last look (GET /v1/admin/experiments/{name}'s last_results), on
        // which it decides: one row to read, and each look a point of the p-values over time.
        // Before its first look, a fresh one (GET .../results).
        const shown = (await o.admin.showExperiment(e.name)) as Row & { last_results: Row | null; analyzed_at: string | null };
        const results = shown.last_results ?? ((await o.admin.experimentResults(e.name)) as Row);
        const at = shown.analyzed_at ? Date.parse(shown.analyzed_at) : t;
        return { ...e, analyzed_at: shown.analyzed_at, results: await withVariantIntervals(results), looks: shown.last_results ? recordLook(e.name, at, results) : looks.get(e.name) ?? null };
      }));
    }
    for (const e of stopped) {
      out.push(await section<Row>(`experiment ${e.name}`, { ...e, results: null, looks: null }, async () => {
        if (!stoppedResults.has(e.name)) stoppedResults.set(e.name, await withVariantIntervals((((await o.admin.showExperiment(e.name)) as Row).last_results ?? null) as Row | null));
        return { ...e, results: stoppedResults.get(e.name), looks: looks.get(e.name) ?? null };
      }));
    }
    return out;
  }

  async function alerts(): Promise<{ firing: Row[]; recent: Row[] }> {
    const all = (await o.admin.listAlerts()) as Array<Row & { state: string; fired_at: string | null; resolved_at: string | null; evaluated_at: string }>;
    const when = (a: (typeof all)[number]) => a.resolved_at ?? a.fired_at ?? a.evaluated_at;
    return {
      firing: all.filter((a) => a.state === 'firing'),
      recent: all.filter((a) => a.state !== 'firing').sort((a, b) => when(b).localeCompare(when(a))).slice(0, RECENT_ALERTS),
    };
  }

  async function build(): Promise<string> {
    problems.length = 0;
    const t = now();
    const byModel = new Map<string, string[]>();
    for (const { model, version } of o.engine.servedVersions()) byModel.set(model, [...(byModel.get(model) ?? []), version]);
    // Series of versions no longer served are dropped.
    const served = new Set([...byModel].flatMap(([m, vs]) => vs.map((v) => `${m}\u0000${v}`)));
    for (const k of versionSeries.keys()) if (!served.has(k)) versionSeries.delete(k);
    for (const m of routes.keys()) if (!byModel.has(m)) routes.delete(m);
    // Sections side by side: most of a build is waiting for the database.
    const [models, deps, exps, alertLists] = await Promise.all([
      // A model unloaded meanwhile is reported, not the whole snapshot lost.
      Promise.all([...byModel].sort(([a], [b]) => a.localeCompare(b)).map(([m, vs]) => section<Row>(`model ${m}`, { model: m, default_version: null, route: null, shares: [], versions: [], drift: null }, () => modelPanel(m, vs.sort(), t)))),
      section('deployments', [], deployments),
      section('experiments', [], () => experiments(t)),
      section('alerts', { firing: [], recent: [] }, alerts),
    ]);
    const snapshot = {
      at: t,
      interval_ms: o.intervalMs,
      window_s: DASHBOARD_WINDOW_S,
      models,
      deployments: deps,
      experiments: exps,
      alerts: alertLists,
      problems: [...problems],
    };
    return JSON.stringify(snapshot);
  }

  return {
    snapshot() {
      // One build per interval for everyone: a thread asking just after another gets the same.
      // The 10% slack keeps two threads whose timers drift a little from missing the shared build.
      if (last && now() - last.at < o.intervalMs * 0.9) return Promise.resolve(last.json);
      const started = now();
      building ??= build().then((json) => {
        last = { at: started, json };
        return json;
      }).finally(() => {
        building = undefined;
      });
      return building;
    },
  };
}
