import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import type { Db, ListenHandlers } from '../../src/registry/db.js';
import { Registry } from '../../src/registry/registry.js';
import { RegistryWatcher } from '../../src/registry/watcher.js';
import { describeEachDb, describeWith, eventually, postgresService, postgresBackend, type TestDb } from '../helpers/services.js';
import { registerModel, uniqueName } from './models.js';

/** Collects what a watcher reports, with when. */
function recorder(watcher: RegistryWatcher): Array<{ model: string; version: string; at: number }> {
  const seen: Array<{ model: string; version: string; at: number }> = [];
  watcher.onChange((model, version) => {
    seen.push({ model, version, at: performance.now() });
  });
  return seen;
}

/** The same database, but every notification is lost on the way (only reconciles can help). */
function deaf(db: Db): Db {
  return Object.assign(Object.create(db) as Db, {
    listen: (channel: string, h: ListenHandlers) => db.listen(channel, { onNotify: () => undefined, ...(h.onListening ? { onListening: h.onListening } : {}) }),
  });
}

describeEachDb('registry watcher', (backend) => {
  let t: TestDb;
  let registry: Registry;
  const watchers: RegistryWatcher[] = [];

  const watch = async (db: Db, reconcileMs: number): Promise<{ watcher: RegistryWatcher; seen: ReturnType<typeof recorder> }> => {
    const watcher = new RegistryWatcher(db, { reconcileMs });
    watchers.push(watcher);
    const seen = recorder(watcher);
    await watcher.start();
    return { watcher, seen };
  };

  beforeAll(async () => {
    t = await backend.open();
    registry = new Registry(t.db, new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts')));
  });
  afterAll(async () => {
    for (const w of watchers) await w.stop();
    await t?.cleanup();
  });

  it('reports every production version at start, then each change once, promptly (LISTEN)', async () => {
    const a = uniqueName('wa');
    for (const v of ['1', '2', '3']) await registerModel(registry, a, { version: v });
    await registry.promote(a, '1', 'production', { actor: 'ops' });
    const { watcher, seen } = await watch(t.db, 60_000); // no periodic reconcile within this test
    expect(seen.filter((s) => s.model === a).map((s) => s.version)).toEqual(['1']);
    expect(watcher.state.get(a)).toBe('1');

    const t0 = performance.now();
    await registry.promote(a, '2', 'production', { actor: 'ops' });
    await eventually(() => seen.find((s) => s.model === a && s.version === '2'), 1000, 'the promotion');
    expect(seen.find((s) => s.model === a && s.version === '2')!.at - t0).toBeLessThan(1000);
    await registry.promote(a, '3', 'staging', { actor: 'ops' }); // not a production change
    await registry.rollback(a, { actor: 'ops' });
    await eventually(() => seen.filter((s) => s.model === a).length === 3 || undefined, 1000, 'the rollback');
    await watcher.reconcile(); // re-reading changes nothing already reported
    expect(seen.filter((s) => s.model === a).map((s) => s.version)).toEqual(['1', '2', '1']);
  });

  it('catches changes whose notification was lost, on the periodic reconcile', async () => {
    const m = uniqueName('wb');
    await registerModel(registry, m, { version: '1' });
    const { seen } = await watch(deaf(t.db), 150);
    await registry.promote(m, '1', 'production', { actor: 'ops' });
    await eventually(() => seen.find((s) => s.model === m && s.version === '1'), 3000, 'a reconcile to see the promotion');
  });

  it('offers a version again when the listener failed to act on it', async () => {
    const m = uniqueName('wc');
    await registerModel(registry, m, { version: '1' });
    const watcher = new RegistryWatcher(t.db, { reconcileMs: 150 });
    watchers.push(watcher);
    let attempts = 0;
    watcher.onChange(async (model) => {
      if (model !== m) return;
      attempts++;
      if (attempts < 3) throw new Error('load failed (simulated)');
    });
    await watcher.start();
    await registry.promote(m, '1', 'production', { actor: 'ops' });
    await eventually(() => (attempts >= 3 ? true : undefined), 5000, 'retries on reconcile');
    await new Promise((r) => setTimeout(r, 400));
    expect(attempts).toBe(3); // succeeded on the third: not offered again
    expect(watcher.state.get(m)).toBe('1');
  });
});

describeWith(postgresService, 'two registry instances on one PostgreSQL database', () => {
  let t: TestDb;
  let other: Db;
  let watcher: RegistryWatcher;

  beforeAll(async () => {
    t = await postgresBackend.open();
    other = await t.connect!();
  });
  afterAll(async () => {
    await watcher?.stop();
    await t?.cleanup();
  });

  it('sees a promotion made on the other within 1 s', async () => {
    const store = new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts'));
    const a = new Registry(t.db, store);
    const m = uniqueName('two');
    for (const v of ['1', '2']) await registerModel(a, m, { version: v });
    await a.promote(m, '1', 'production', { actor: 'ops' });
    // Instance B: its own pool and LISTEN connection; no periodic reconcile to help it.
    watcher = new RegistryWatcher(other, { reconcileMs: 60_000 });
    const seen = recorder(watcher);
    await watcher.start();
    expect(seen.map((s) => [s.model, s.version])).toEqual([[m, '1']]);
    for (const [i, v] of [['1', '2'], ['2', '1'], ['3', '2']] as const) {
      const t0 = performance.now();
      await a.promote(m, v, 'production', { actor: 'ops', reason: `round ${i}` });
      const hit = await eventually(() => seen.find((s, k) => k >= Number(i) && s.version === v), 1000, `round ${i}`);
      expect(hit.at - t0).toBeLessThan(1000);
    }
  });
});
