/**
 * The dashboard's snapshot (src/service/dashboard.ts) over a stand-in admin service and engine:
 * one build per interval however many ask, series growing a point per build and capped,
 * experiment looks recorded once per look of the analysis loop, routes read from the registry only
 * when the route in force changes, and a failing section reported while the others still show.
 */
import { describe, expect, it } from 'vitest';
import { dashboardService, SERIES_POINTS, type DashboardEngine } from '../../src/service/dashboard.js';
import { SluiceError } from '../../src/errors.js';
import type { WindowStats } from '../../src/metrics/windows.js';

function setup() {
  let clock = 1_000_000;
  const calls: Record<string, number> = {};
  const count = (k: string) => (calls[k] = (calls[k] ?? 0) + 1);
  let analyzedAt = '2026-12-02T10:00:00.000Z';
  let routeGen = 7;
  let alertsFail = false;
  let banditRoute = false;
  const stats = (requests: number): WindowStats => ({
    requests, errors: 1, errorsByCode: { MODEL_ERROR: 1 }, fromMs: clock - 20_000, toMs: clock,
    latency: { p50: 1, p95: 2, p99: 3, mean: 1.2, count: requests - 1 },
  });
  const engine: DashboardEngine = {
    servedVersions: () => [{ model: 'm', version: '1' }, { model: 'm', version: '2' }],
    liveVersions: () => ({ versions: ['1', '2'], default: '1', route: { variants: [], assignment: 'hash', salt: 'm', shadows: [], logFeatures: false, gen: 100 + routeGen, registryGen: routeGen } }),
    windowStats: async (_m, v) => {
      count('window');
      if (v === '2') throw new SluiceError('VERSION_NOT_FOUND', 'not served yet');
      return stats(41);
    },
    routeBandits: { weights: () => (banditRoute ? { weights: [0.2, 0.8], rewards: [5, 9], rewardSums: [1, 7] } : undefined) },
    learners: { get: () => undefined },
    drift: { report: (model) => ({ model, versions: [] }) },
  };
  const admin = {
    getRoute: async (model: string) => {
      count('getRoute');
      return { model, owner: 'manual', generation: routeGen, route: { assignment: banditRoute ? 'bandit' : 'hash', variants: [{ name: 'a', version: '1', weight: 0.25 }, { name: 'b', version: '2', weight: 0.75 }] } };
    },
    listDeployments: async () => [],
    showDeployment: async () => ({}),
    listExperiments: async () => [{ name: 'ab', model: 'm', status: 'running', started_at: '2026-12-02T09:00:00.000Z' }],
    showExperiment: async () => ({
      analyzed_at: analyzedAt,
      last_results: {
        alpha: 0.05,
        metrics: [{ name: 'reward', kind: 'mean', variants: [{ name: 'c', n: 10, mean: 3.2, sd: 1.5 }, { name: 't', n: 1, mean: 2, sd: null }], treatments: [{ variant: 't', p: 0.2, seq_p: 0.9 }] }],
      },
    }),
    experimentResults: async () => ({}),
    listAlerts: async () => {
      if (alertsFail) throw new SluiceError('REGISTRY_UNAVAILABLE', 'database away');
      return [
        { state: 'firing', rule: 'x', fired_at: '2026-12-02T10:00:00.000Z', resolved_at: null, evaluated_at: '2026-12-02T10:00:01.000Z' },
        { state: 'resolved', rule: 'y', fired_at: '2026-12-02T09:00:00.000Z', resolved_at: '2026-12-02T09:30:00.000Z', evaluated_at: '2026-12-02T10:00:01.000Z' },
      ];
    },
  };
  const service = dashboardService({ admin: admin as never, engine, intervalMs: 1000, now: () => clock });
  return {
    service, calls,
    tick: (ms: number) => (clock += ms),
    newLook: (iso: string) => (analyzedAt = iso),
    newRoute: () => routeGen++,
    failAlerts: (f: boolean) => (alertsFail = f),
    bandit: () => (banditRoute = true),
    snap: async () => JSON.parse(await service.snapshot()),
  };
}

describe('dashboard snapshot', () => {
  it('is built once per interval however many ask', async () => {
    const t = setup();
    const [a, b] = await Promise.all([t.service.snapshot(), t.service.snapshot()]);
    expect(a).toBe(b);
    expect(t.calls.window).toBe(2); // one per version, once
    t.tick(500);
    expect(await t.service.snapshot()).toBe(a);
    t.tick(500);
    expect(await t.service.snapshot()).not.toBe(a);
    expect(t.calls.window).toBe(4);
  });

  it('has each version\'s figures and series, the route with its shares, alerts split, and experiments with intervals', async () => {
    const t = setup();
    const s = await t.snap();
    const m = s.models[0];
    expect(m.shares).toEqual([{ variant: 'a', version: '1', share: 0.25 }, { variant: 'b', version: '2', share: 0.75 }]);
    expect(m.route).toMatchObject({ owner: 'manual', generation: 7 });
    const [v1, v2] = m.versions;
    expect(v1.now).toMatchObject({ rate: 41 / 20, error_rate: 1 / 41, p50: 1, p95: 2, p99: 3 });
    // A version no thread served yet: idle, no latency points.
    expect(v2.now).toMatchObject({ rate: 0, error_rate: 0 });
    expect(v2.series.p99).toEqual([null]);
    expect(s.alerts.firing.map((a: { rule: string }) => a.rule)).toEqual(['x']);
    expect(s.alerts.recent.map((a: { rule: string }) => a.rule)).toEqual(['y']);
    const [c, tr] = s.experiments[0].results.metrics[0].variants;
    expect(c.ci[0]).toBeCloseTo(2.126964641044003, 12); // scipy's t interval (variant-interval-reference.json)
    expect(tr.ci).toBeNull();
    expect(s.problems).toEqual([]);
  });

  it('grows series a point per build up to a cap, and records each look of the analysis once', async () => {
    const t = setup();
    for (let i = 0; i < SERIES_POINTS + 5; i++) {
      await t.snap();
      t.tick(1000);
    }
    const s = await t.snap();
    expect(s.models[0].versions[0].series.t).toHaveLength(SERIES_POINTS);
    expect(s.models[0].versions[0].series.rate).toHaveLength(SERIES_POINTS);
    // The loop looked once: one point, however many builds.
    expect(s.experiments[0].looks).toMatchObject({ p: { 'reward/t': [0.2] }, seq_p: { 'reward/t': [0.9] } });
    t.newLook('2026-12-02T10:00:05.000Z');
    t.tick(1000);
    expect((await t.snap()).experiments[0].looks.seq_p['reward/t']).toEqual([0.9, 0.9]);
  });

  it('reads the route from the registry only when the route in force changes', async () => {
    const t = setup();
    await t.snap();
    t.tick(1000);
    await t.snap();
    expect(t.calls.getRoute).toBe(1);
    t.newRoute();
    t.tick(1000);
    expect((await t.snap()).models[0].route.generation).toBe(8);
    expect(t.calls.getRoute).toBe(2);
  });

  it("shows a bandit route's learned weights as its shares, with each variant's rewards", async () => {
    const t = setup();
    t.bandit();
    expect((await t.snap()).models[0].shares).toEqual([
      { variant: 'a', version: '1', share: 0.2, rewards: 5, reward_sum: 1 },
      { variant: 'b', version: '2', share: 0.8, rewards: 9, reward_sum: 7 },
    ]);
  });

  it('reports a failing section and still shows the others', async () => {
    const t = setup();
    t.failAlerts(true);
    const s = await t.snap();
    expect(s.problems).toEqual([{ section: 'alerts', code: 'REGISTRY_UNAVAILABLE', message: 'database away' }]);
    expect(s.alerts).toEqual({ firing: [], recent: [] });
    expect(s.models).toHaveLength(1);
    t.failAlerts(false);
    t.tick(1000);
    expect((await t.snap()).problems).toEqual([]);
  });
});
