/**
 * Issue #12 on the engine alone (one I/O thread, the pool for pooled versions): several live
 * versions of one model, unloading one without touching the others, routes switched atomically
 * under load, decisions on every routed answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/service/engine.js';
import type { Decision } from '../../src/learn/decision.js';
import type { RouteSpec } from '../../src/routing/route.js';
import type { Tensor } from '../../src/model/tensor.js';
import { randomF32 } from '../helpers/random.js';
import { demoWeights, logistic, tempRepo, writeLinear } from '../helpers/repo.js';

const w = demoWeights();
const scaleOf = (version: string) => Number(version) / 10;
const x: Tensor = { name: 'features', datatype: 'FP32', shape: [1, 100], data: randomF32(100, 3) };
const expected = (version: string) => logistic(x.data as Float32Array, w.map((v) => v * scaleOf(version)), 0.25);

function route(variants: Array<[string, string, number]>, extra: Partial<RouteSpec> = {}): RouteSpec {
  return { variants: variants.map(([name, version, weight]) => ({ name, version, weight })), assignment: 'hash', salt: 'm', shadows: [], logFeatures: false, ...extra };
}

describe('engine: live versions and routes', () => {
  let engine: Engine;
  let repo: Awaited<ReturnType<typeof tempRepo>>;
  const decisions: Decision[] = [];

  beforeAll(async () => {
    repo = await tempRepo();
    for (const v of ['1', '2', '3', '4']) {
      await writeLinear(repo.root, 'inl', v, { scale: scaleOf(v), dispatch: 'inline' });
      await writeLinear(repo.root, 'pool', v, { scale: scaleOf(v), dispatch: 'pool', maxBatch: 32 });
    }
    engine = await Engine.start({ modelRepository: repo.root, workers: 1, startupModels: 'none' });
    engine.onDecisions((batch) => decisions.push(...batch));
    for (const m of ['inl', 'pool']) await engine.load(m, { version: '1' });
  });
  afterAll(async () => {
    await engine.close();
    await repo.cleanup();
  });

  for (const model of ['inl', 'pool']) {
    it(`${model}: three versions serve at once; unloading one leaves the others serving`, async () => {
      await engine.load(model, { version: '2', asDefault: false });
      await engine.load(model, { version: '3', asDefault: false });
      expect(engine.liveVersions(model)).toMatchObject({ default: '1' });
      expect(engine.liveVersions(model).versions.sort()).toEqual(['1', '2', '3']);
      for (const v of ['1', '2', '3']) {
        const r = await engine.infer({ model, version: v, inputs: [x] });
        expect(r.version).toBe(v);
        expect(r.outputs[0]!.data[0]).toBeCloseTo(expected(v), 5);
        expect(engine.modelReady(model, v)).toBe(true);
      }
      // Unversioned requests still go to the default, with no decision (no route).
      const d = await engine.infer({ model, inputs: [x] });
      expect(d.version).toBe('1');
      expect(d.decision).toBeUndefined();
      expect(engine.modelStats(model).map((s) => s.version).sort()).toEqual(['1', '2', '3']);

      await expect(engine.unload(model, { version: '1' })).rejects.toMatchObject({ code: 'VERSION_IN_USE' });
      await expect(engine.unload(model, { version: '9' })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
      await engine.unload(model, { version: '2' });
      await expect(engine.infer({ model, version: '2', inputs: [x] })).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
      for (const v of ['1', '3']) expect((await engine.infer({ model, version: v, inputs: [x] })).version).toBe(v);
      // A swap of the default keeps a version loaded on purpose.
      await engine.load(model, { version: '4' });
      expect(engine.liveVersions(model).versions.sort()).toEqual(['3', '4']);
      expect((await engine.infer({ model, version: '3', inputs: [x] })).version).toBe('3');
      expect((await engine.infer({ model, inputs: [x] })).version).toBe('4');
      await engine.load(model, { version: '1' });
      await engine.unload(model, { version: '3' });
      await engine.unload(model, { version: '4' }).catch(() => undefined);
    });
  }

  it('a route spreads unversioned requests, each answer carrying its decision, and loads what it names first', async () => {
    const gen = await engine.setRoute('inl', route([['a', '1', 0.9], ['b', '2', 0.1]]));
    expect(gen).toBeGreaterThan(0);
    expect(engine.liveVersions('inl').versions.sort()).toEqual(['1', '2']);
    await expect(engine.unload('inl', { version: '2' })).rejects.toMatchObject({ code: 'VERSION_IN_USE' });
    const byVariant = new Map<string, number>();
    const ids = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const r = await engine.infer({ model: 'inl', inputs: [x], unitId: `u${i}` });
      expect(r.decision).toBeDefined();
      const { variant, propensity, eventId } = r.decision!;
      expect(r.version).toBe(variant === 'a' ? '1' : '2');
      expect(propensity).toBeCloseTo(variant === 'a' ? 0.9 : 0.1, 12);
      expect(r.outputs[0]!.data[0]).toBeCloseTo(expected(r.version), 5);
      ids.add(eventId);
      byVariant.set(variant, (byVariant.get(variant) ?? 0) + 1);
    }
    expect(ids.size).toBe(2000);
    // 2,000 units at p = 0.9: sd = sqrt(2000 * 0.9 * 0.1) ~ 13.4; 4 sd either side.
    expect(Math.abs(byVariant.get('a')! - 1800)).toBeLessThan(4 * Math.sqrt(2000 * 0.09));
    // Sticky: one unit, one variant.
    const first = (await engine.infer({ model: 'inl', inputs: [x], unitId: 'sticky' })).decision!.variant;
    for (let i = 0; i < 200; i++) expect((await engine.infer({ model: 'inl', inputs: [x], unitId: 'sticky' })).decision!.variant).toBe(first);
    // A version named explicitly bypasses the route (no decision).
    expect((await engine.infer({ model: 'inl', version: '1', inputs: [x] })).decision).toBeUndefined();
    // Decisions reached the sink, with the route's generation.
    await new Promise((r) => setTimeout(r, 60));
    const logged = decisions.filter((d) => ids.has(d.eventId));
    expect(logged).toHaveLength(2000);
    expect(logged.every((d) => d.routeGen === gen && d.model === 'inl' && d.features === undefined)).toBe(true);
  });

  it('a route naming a version that fails to load leaves the route in force untouched', async () => {
    const before = engine.liveVersions('inl').route;
    await expect(engine.setRoute('inl', route([['a', '1', 0.5], ['c', '77', 0.5]]))).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
    expect(engine.liveVersions('inl').route).toEqual(before);
  });

  it('logs features when the route asks, and clearing the route goes back to the default version', async () => {
    await engine.setRoute('inl', route([['only', '2', 1]], { logFeatures: true, assignment: 'random' }));
    const r = await engine.infer({ model: 'inl', inputs: [x] });
    expect(r.decision).toMatchObject({ variant: 'only', propensity: 1 });
    await new Promise((res) => setTimeout(res, 60));
    const d = decisions.find((e) => e.eventId === r.decision!.eventId)!;
    expect(Array.from(d.features!)).toEqual(Array.from(x.data as Float32Array));
    expect(await engine.setRoute('inl', undefined)).toBe(0);
    const after = await engine.infer({ model: 'inl', inputs: [x] });
    expect(after.version).toBe('1');
    expect(after.decision).toBeUndefined();
  });

  it('50 route changes under load on inline and pooled versions: 0 failures, every output from the version it names', async () => {
    await engine.load('pool', { version: '2', asDefault: false });
    let running = true;
    const failures: string[] = [];
    let ok = 0;
    const client = async (model: string) => {
      let i = 0;
      while (running) {
        try {
          const r = await engine.infer({ model, inputs: [x], unitId: `c${i++}` });
          if (Math.abs((r.outputs[0]!.data[0] as number) - expected(r.version)) > 1e-5) failures.push(`${model}@${r.version}: wrong output`);
          ok++;
        } catch (e) {
          failures.push(`${model}: ${(e as Error).message}`);
        }
        await new Promise((res) => setImmediate(res));
      }
    };
    const clients = ['inl', 'pool', 'inl', 'pool'].map(client);
    for (let k = 0; k < 50; k++) {
      const wA = (k % 9 + 1) / 10;
      await Promise.all(['inl', 'pool'].map((m) => engine.setRoute(m, route([['a', '1', wA], ['b', '2', 1 - wA]], { salt: `s${k}` }))));
      // Traffic runs between the changes (a change of a route over live versions takes microseconds).
      await new Promise((res) => setTimeout(res, 10));
    }
    running = false;
    await Promise.all(clients);
    expect(failures.slice(0, 5)).toEqual([]);
    expect(ok).toBeGreaterThan(100);
  });
});
