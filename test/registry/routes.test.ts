/**
 * Routes in the registry (src/registry/routes.ts, migration 004) and the watcher's route
 * reports, on PGlite and PostgreSQL: set/get/clear with audit rows and generations, refusals,
 * NOTIFY reaching a second watcher on the same database, re-offers and convergence.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import type { Db, ListenHandlers } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { REGISTRY_CHANNEL } from '../../src/registry/types.js';
import { RegistryWatcher } from '../../src/registry/watcher.js';
import { parseRoute, rebalanceRoute, routeJson, type RouteSpec } from '../../src/routing/route.js';
import { describeEachDb, eventually, type TestDb } from '../helpers/services.js';
import { registerModel, uniqueName } from './models.js';

const INJECTION = "x'); DROP TABLE routes;--";

function spec(model: string, extra: Record<string, unknown> = {}): RouteSpec {
  return parseRoute({ variants: [{ name: 'a', version: '1', weight: 0.9 }, { name: 'b', version: '2', weight: 0.1 }], assignment: 'hash', ...extra }, model);
}

interface Seen { model: string; route: RouteSpec | undefined; generation: number }

function recordRoutes(watcher: RegistryWatcher): Seen[] {
  const seen: Seen[] = [];
  watcher.onRouteChange((model, route, generation) => {
    seen.push({ model, route, generation });
  });
  return seen;
}

/** The same database, but every notification is lost on the way (only reconciles can help). */
function deaf(db: Db): Db {
  return Object.assign(Object.create(db) as Db, {
    listen: (channel: string, h: ListenHandlers) => db.listen(channel, { onNotify: () => undefined, ...(h.onListening ? { onListening: h.onListening } : {}) }),
  });
}

describeEachDb('routes in the registry', (backend) => {
  let t: TestDb;
  let registry: Registry;
  const watchers: RegistryWatcher[] = [];

  const model = async (versions = ['1', '2', '3']): Promise<string> => {
    const m = uniqueName('rt');
    for (const v of versions) await registerModel(registry, m, { version: v });
    return m;
  };
  const watcher = (db: Db, reconcileMs = 60_000): RegistryWatcher => {
    const w = new RegistryWatcher(db, { reconcileMs });
    watchers.push(w);
    return w;
  };

  beforeAll(async () => {
    t = await backend.open();
    registry = new Registry(t.db, new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts')));
  });
  afterAll(async () => {
    for (const w of watchers) await w.stop();
    await t?.cleanup();
  });

  it('sets, reads and clears a route; each change bumps the generation and writes one audit row', async () => {
    const m = await model();
    expect(await registry.getRoute(m)).toBeUndefined();
    const first = spec(m, { shadows: [{ version: '3', fraction: 0.5 }], log_features: true });
    const set = await registry.setRoute(m, first, { actor: 'alice', reason: 'canary' });
    expect(set).toMatchObject({ model: m, generation: 1, changed: true });
    expect(set.route).toEqual(first);
    const got = await registry.getRoute(m);
    expect(got).toMatchObject({ generation: 1, updatedBy: 'alice' });
    expect(got!.spec).toEqual(first);
    expect(got!.updatedAt).toBeInstanceOf(Date);
    expect((await registry.routes()).get(m)).toEqual({ spec: first, generation: 1 });

    // The same route again: nothing written.
    expect(await registry.setRoute(m, spec(m, { shadows: [{ version: '3', fraction: 0.5 }], log_features: true }), { actor: 'bob' }))
      .toMatchObject({ generation: 1, changed: false, auditId: null });

    const second = spec(m, { assignment: 'random', salt: 's2' });
    expect(await registry.setRoute(m, second, { actor: 'bob' })).toMatchObject({ generation: 2, changed: true });
    expect((await registry.getRoute(m))!.spec).toEqual(second);

    const cleared = await registry.clearRoute(m, { actor: 'carol', reason: 'done' });
    expect(cleared).toMatchObject({ model: m, route: null, generation: 3, changed: true });
    expect(await registry.getRoute(m)).toBeUndefined();
    expect((await registry.routes()).has(m)).toBe(false);
    expect(await registry.clearRoute(m, { actor: 'carol' })).toMatchObject({ route: null, generation: 3, changed: false, auditId: null });

    // A route after a clear continues the generations (never reused).
    expect(await registry.setRoute(m, first, { actor: 'dave' })).toMatchObject({ generation: 4, changed: true });

    const audit = await registry.audit({ model: m, order: 'asc' });
    expect(audit.map((a) => [a.action, a.actor, a.reason])).toEqual([
      ['register', 'test-admin', ''], ['register', 'test-admin', ''], ['register', 'test-admin', ''],
      ['route_set', 'alice', 'canary'], ['route_set', 'bob', ''], ['route_clear', 'carol', 'done'], ['route_set', 'dave', ''],
    ]);
    const routeRows = audit.filter((a) => a.action === 'route_set' || a.action === 'route_clear');
    expect(routeRows.map((a) => a.routeGeneration)).toEqual([1, 2, 3, 4]);
    expect(routeRows[0]).toMatchObject({ route: routeJson(first), toVersion: null, toStage: null, fromVersion: null });
    expect(routeRows[2]).toMatchObject({ route: null });
    expect(set.auditId).toBe(routeRows[0]!.id);
    expect((await registry.audit({ model: m, action: 'route_clear' })).map((a) => a.id)).toEqual([routeRows[2]!.id]);
  });

  it('stores a route with ranges as its JSON and reads it back equal (no migration); a rebalance is a change', async () => {
    const m = await model();
    const thirds = parseRoute({ variants: ['1', '2', '3'].map((v) => ({ name: `v${v}`, version: v, weight: 1 })), assignment: 'hash' }, m);
    const ranged = rebalanceRoute(thirds, [0.5, 0.25, 0.25], m);
    expect(await registry.setRoute(m, ranged, { actor: 'exp' })).toMatchObject({ generation: 1, changed: true });
    expect((await registry.getRoute(m))!.spec).toEqual(ranged);
    expect((await registry.routes()).get(m)).toEqual({ spec: ranged, generation: 1 });
    expect(await registry.setRoute(m, parseRoute(JSON.parse(JSON.stringify(routeJson(ranged))), m), { actor: 'exp' })).toMatchObject({ changed: false });
    expect(await registry.setRoute(m, rebalanceRoute(ranged, [1, 1, 1], m), { actor: 'exp' })).toMatchObject({ generation: 2, changed: true });
  });

  it('refuses unknown models, unregistered versions and bad names, writing nothing', async () => {
    const m = await model(['1', '2']);
    await expect(registry.setRoute(uniqueName('none'), spec('x'), { actor: 'a' })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await expect(registry.getRoute(uniqueName('none'))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await expect(registry.clearRoute(uniqueName('none'), { actor: 'a' })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    const missingVariant = parseRoute({ variants: [{ name: 'a', version: '1', weight: 1 }, { name: 'b', version: '9.9', weight: 1 }], assignment: 'hash' }, m);
    await expect(registry.setRoute(m, missingVariant, { actor: 'a' })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND', message: expect.stringContaining('9.9') });
    await expect(registry.setRoute(m, spec(m, { shadows: [{ version: '7', fraction: 0.1 }] }), { actor: 'a' })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND', message: expect.stringContaining('7') });
    await expect(registry.setRoute(INJECTION, spec('x'), { actor: 'a' })).rejects.toMatchObject({ code: 'NAME_INVALID' });
    await expect(registry.getRoute(INJECTION)).rejects.toMatchObject({ code: 'NAME_INVALID' });
    await expect(registry.setRoute(m, spec(m), { actor: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // A spec built by hand past parseRoute is checked again.
    const forged = { ...spec(m), variants: [{ name: 'a', version: '1', weight: -1 }] } as RouteSpec;
    await expect(registry.setRoute(m, forged, { actor: 'a' })).rejects.toMatchObject({ code: 'ROUTE_INVALID' });
    expect(await registry.getRoute(m)).toBeUndefined();
    expect((await registry.audit({ model: m })).every((a) => a.action === 'register')).toBe(true);
    expect(await t.db.query('SELECT 1 FROM routes WHERE model = $1', [m])).toHaveLength(0);
  });

  it('NOTIFYs {model, route: generation} on the registry channel; a production watcher ignores it', async () => {
    const m = await model(['1', '2']);
    await registry.promote(m, '1', 'production', { actor: 'ops' });
    const got: unknown[] = [];
    const unlisten = await t.db.listen(REGISTRY_CHANNEL, { onNotify: (p) => got.push(JSON.parse(p)) });
    const production = watcher(t.db);
    const versions: string[] = [];
    production.onChange((model, v) => {
      if (model === m) versions.push(v);
    });
    await production.start();
    try {
      await registry.setRoute(m, spec(m), { actor: 'ops' });
      await registry.clearRoute(m, { actor: 'ops' });
      await eventually(() => (got.length >= 2 ? true : undefined), 2000, 'two notifications');
      expect(got).toEqual([{ model: m, route: 1 }, { model: m, route: 2 }]);
      await registry.promote(m, '2', 'production', { actor: 'ops' });
      await eventually(() => (versions.includes('2') ? true : undefined), 2000, 'the promotion');
      expect(versions).toEqual(['1', '2']);
    } finally {
      await unlisten();
    }
  });

  it('a second watcher on the same database hears every route change promptly, and converges to the latest', async () => {
    const m = await model();
    const other = backend.name === 'postgres' ? await t.connect!() : t.db; // PostgreSQL: its own pool and LISTEN connection
    const w = watcher(other);
    const seen = recordRoutes(w);
    await w.start();
    expect(seen.filter((s) => s.model === m)).toEqual([]);

    const t0 = performance.now();
    await registry.setRoute(m, spec(m), { actor: 'ops' });
    await eventually(() => seen.find((s) => s.model === m), 1000, 'the route');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(seen.filter((s) => s.model === m)).toEqual([{ model: m, route: spec(m), generation: 1 }]);

    await registry.clearRoute(m, { actor: 'ops' });
    await eventually(() => seen.find((s) => s.model === m && s.generation === 2), 1000, 'the clear');
    expect(seen.at(-1)).toEqual({ model: m, route: undefined, generation: 2 });

    // A burst: what is reported ends at the last committed route, generations only rising.
    const last = spec(m, { salt: 'burst-9' });
    for (let i = 0; i < 9; i++) await registry.setRoute(m, spec(m, { salt: `burst-${i}` }), { actor: 'ops' });
    await registry.setRoute(m, last, { actor: 'ops' });
    await eventually(() => (seen.at(-1)?.generation === 12 ? true : undefined), 2000, 'the last of the burst');
    expect(seen.at(-1)!.route).toEqual(last);
    const gens = seen.filter((s) => s.model === m).map((s) => s.generation);
    expect(gens).toEqual([...gens].sort((a, b) => a - b));
    await w.reconcile();
    expect(seen.at(-1)!.generation).toBe(12); // nothing offered twice
    expect(w.routeGenerations.get(m)).toBe(12);
  });

  it('reports every route in force once at start (not cleared ones), and catches lost notifications on reconcile', async () => {
    const live = await model();
    const gone = await model();
    await registry.setRoute(live, spec(live), { actor: 'ops' });
    await registry.setRoute(gone, spec(gone), { actor: 'ops' });
    await registry.clearRoute(gone, { actor: 'ops' });
    const w = watcher(deaf(t.db), 150);
    const seen = recordRoutes(w);
    await w.start();
    expect(seen.filter((s) => s.model === live || s.model === gone)).toEqual([{ model: live, route: spec(live), generation: 1 }]);
    await w.reconcile();
    expect(seen.filter((s) => s.model === live)).toHaveLength(1);
    // Notifications are lost on this watcher: the periodic reconcile still brings the change.
    await registry.clearRoute(live, { actor: 'ops' });
    await eventually(() => seen.find((s) => s.model === live && s.generation === 2), 3000, 'a reconcile to see the clear');
    expect(seen.filter((s) => s.model === live).at(-1)).toEqual({ model: live, route: undefined, generation: 2 });
  });

  it('offers a route again when the listener rejected it, and a clear after a refused route too', async () => {
    const m = await model();
    const w = watcher(t.db, 150);
    const attempts: number[] = [];
    let failUntil = 3;
    w.onRouteChange(async (model, _route, generation) => {
      if (model !== m) return;
      attempts.push(generation);
      if (attempts.length < failUntil) throw new Error('load failed (simulated)');
    });
    await w.start();
    await registry.setRoute(m, spec(m), { actor: 'ops' });
    await eventually(() => (attempts.length >= 3 ? true : undefined), 5000, 'retries on reconcile');
    await new Promise((r) => setTimeout(r, 400));
    expect(attempts).toEqual([1, 1, 1]); // taken on the third offer: not offered again

    // A route the listener never takes, then a clear: the clear is still offered (the engine
    // must hear that the model is back on production even though it never took the route).
    failUntil = Infinity;
    attempts.length = 0;
    await registry.setRoute(m, spec(m, { salt: 'refused' }), { actor: 'ops' });
    await eventually(() => (attempts.length >= 2 ? true : undefined), 5000, 'the refused route offered again');
    await registry.clearRoute(m, { actor: 'ops' });
    await eventually(() => (attempts.includes(3) ? true : undefined), 5000, 'the clear');
    // Only the clear from then on: never the older, refused route again.
    expect(attempts.slice(attempts.indexOf(3)).every((g) => g === 3)).toBe(true);
  });
});
