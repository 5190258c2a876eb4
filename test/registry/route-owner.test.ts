/**
 * Route owners in the registry (migration 005, src/registry/routes.ts), on PGlite and
 * PostgreSQL: the default owner, the refusal of another owner's change over an experiment's or a
 * deployment's route (ROUTE_OWNED, nothing written), `force` and its audit row, ownership
 * changes, the database's own checks, the migration of routes stored before it, and the
 * ownership check holding under concurrent changes.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { loadMigrations, migrate } from '../../src/registry/migrate.js';
import { Registry } from '../../src/registry/registry.js';
import type { RouteChangeOptions } from '../../src/registry/types.js';
import { parseRoute, routeJson, type RouteSpec } from '../../src/routing/route.js';
import { describeEachDb, openBareDb, type TestDb } from '../helpers/services.js';
import { registerModel, uniqueName } from './models.js';

function spec(model: string, salt = model): RouteSpec {
  return parseRoute({ variants: [{ name: 'a', version: '1', weight: 0.9 }, { name: 'b', version: '2', weight: 0.1 }], assignment: 'hash', salt }, model);
}

describeEachDb('route owners in the registry', (backend) => {
  let t: TestDb;
  let registry: Registry;

  const model = async (): Promise<string> => {
    const m = uniqueName('own');
    for (const v of ['1', '2']) await registerModel(registry, m, { version: v });
    return m;
  };
  const routeAudit = async (m: string) => (await registry.audit({ model: m, order: 'asc' })).filter((a) => a.action === 'route_set' || a.action === 'route_clear');
  const storedOwner = async (m: string) => (await t.db.query<{ owner: string }>('SELECT owner FROM routes WHERE model = $1', [m]))[0]?.owner;

  beforeAll(async () => {
    t = await backend.open();
    registry = new Registry(t.db, new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts')));
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('a route is manual unless its change says otherwise; the owner is stored, returned and audited', async () => {
    const m = await model();
    const set = await registry.setRoute(m, spec(m), { actor: 'alice' });
    expect(set).toMatchObject({ owner: 'manual', changed: true, forcedOver: null });
    expect(await registry.getRoute(m)).toMatchObject({ owner: 'manual', generation: 1 });
    expect(await storedOwner(m)).toBe('manual');

    const exp = await registry.setRoute(m, spec(m, 'exp'), { actor: 'experiments', owner: 'experiment' });
    expect(exp).toMatchObject({ owner: 'experiment', generation: 2, changed: true, forcedOver: null }); // a manual route is anyone's
    expect(await registry.getRoute(m)).toMatchObject({ owner: 'experiment', updatedBy: 'experiments' });
    expect(await storedOwner(m)).toBe('experiment');
    expect((await routeAudit(m)).map((a) => [a.actor, (a as { routeOwner: string }).routeOwner, (a as { forcedOver: string | null }).forcedOver]))
      .toEqual([['alice', 'manual', null], ['experiments', 'experiment', null]]);
  });

  it('refuses another owner\'s change or clear of an experiment\'s or a deployment\'s route (ROUTE_OWNED), writing nothing', async () => {
    for (const owner of ['experiment', 'deployment'] as const) {
      const m = await model();
      await registry.setRoute(m, spec(m, 'mine'), { actor: 'controller', owner });
      const others = (['manual', 'experiment', 'deployment'] as const).filter((o) => o !== owner);
      for (const by of others) {
        const opts: RouteChangeOptions = by === 'manual' ? { actor: 'bob' } : { actor: 'bob', owner: by };
        await expect(registry.setRoute(m, spec(m, 'theirs'), opts), `${by} over ${owner}`).rejects.toMatchObject({ code: 'ROUTE_OWNED', message: expect.stringContaining('"force": true') });
        // The very same route, taken over: still a change of owner, still refused.
        await expect(registry.setRoute(m, spec(m, 'mine'), opts)).rejects.toMatchObject({ code: 'ROUTE_OWNED' });
        await expect(registry.clearRoute(m, opts)).rejects.toMatchObject({ code: 'ROUTE_OWNED' });
        await expect(registry.setRoute(m, spec(m, 'theirs'), { ...opts, force: false })).rejects.toMatchObject({ code: 'ROUTE_OWNED' });
      }
      expect(await registry.getRoute(m)).toMatchObject({ owner, generation: 1, updatedBy: 'controller' });
      expect((await registry.getRoute(m))!.spec).toEqual(spec(m, 'mine'));
      expect(await routeAudit(m)).toHaveLength(1);
      // Its own owner changes and clears it freely.
      expect(await registry.setRoute(m, spec(m, 'mine-2'), { actor: 'controller', owner })).toMatchObject({ changed: true, generation: 2, forcedOver: null });
      expect(await registry.clearRoute(m, { actor: 'controller', owner })).toMatchObject({ changed: true, generation: 3, forcedOver: null });
    }
  });

  it('force replaces or clears it, and the audit row names whose route was replaced', async () => {
    const m = await model();
    await registry.setRoute(m, spec(m, 'canary'), { actor: 'deployer', owner: 'deployment' });
    const forced = await registry.setRoute(m, spec(m, 'ops'), { actor: 'oncall', reason: 'stop the canary', force: true });
    expect(forced).toMatchObject({ owner: 'manual', generation: 2, changed: true, forcedOver: 'deployment' });
    expect(await registry.getRoute(m)).toMatchObject({ owner: 'manual', updatedBy: 'oncall' });
    // Now manual: no force needed by anyone (and none recorded).
    expect(await registry.setRoute(m, spec(m, 'ops-2'), { actor: 'oncall' })).toMatchObject({ forcedOver: null });

    await registry.setRoute(m, spec(m, 'exp'), { actor: 'experiments', owner: 'experiment' });
    const cleared = await registry.clearRoute(m, { actor: 'oncall', force: true, reason: 'experiment misbehaves' });
    expect(cleared).toMatchObject({ route: null, owner: null, changed: true, forcedOver: 'experiment' });
    // Force where none is needed changes nothing about the record.
    expect(await registry.clearRoute(m, { actor: 'oncall', force: true })).toMatchObject({ changed: false, forcedOver: null });

    const audit = await routeAudit(m);
    expect(audit.map((a) => [a.action, a.actor, a.reason, (a as { routeOwner: string }).routeOwner, (a as { forcedOver: string | null }).forcedOver])).toEqual([
      ['route_set', 'deployer', '', 'deployment', null],
      ['route_set', 'oncall', 'stop the canary', 'manual', 'deployment'],
      ['route_set', 'oncall', '', 'manual', null],
      ['route_set', 'experiments', '', 'experiment', null],
      ['route_clear', 'oncall', 'experiment misbehaves', 'manual', 'experiment'],
    ]);
    expect(audit[1]).toMatchObject({ route: routeJson(spec(m, 'ops')), routeGeneration: 2 });
    expect(forced.auditId).toBe(audit[1]!.id);
  });

  it('an owner change of the same route is a change (new generation, audited); the same route and owner is not', async () => {
    const m = await model();
    await registry.setRoute(m, spec(m), { actor: 'ops' });
    expect(await registry.setRoute(m, spec(m), { actor: 'ops' })).toMatchObject({ changed: false, generation: 1, auditId: null });
    const handed = await registry.setRoute(m, spec(m), { actor: 'experiments', owner: 'experiment' });
    expect(handed).toMatchObject({ changed: true, generation: 2, owner: 'experiment' });
    expect(await registry.setRoute(m, spec(m), { actor: 'experiments', owner: 'experiment' })).toMatchObject({ changed: false, generation: 2 });
    expect(await routeAudit(m)).toHaveLength(2);
  });

  it('refuses an unknown owner or a force that is not a boolean, and the database refuses an unknown owner too', async () => {
    const m = await model();
    for (const owner of ['bandit', 'Manual', '', 7]) {
      await expect(registry.setRoute(m, spec(m), { actor: 'a', owner: owner as never }), String(owner)).rejects.toMatchObject({ code: 'ROUTE_INVALID', message: expect.stringContaining('owner') });
      await expect(registry.clearRoute(m, { actor: 'a', owner: owner as never })).rejects.toMatchObject({ code: 'ROUTE_INVALID' });
    }
    await expect(registry.setRoute(m, spec(m), { actor: 'a', force: 'yes' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'force must be true or false' });
    expect(await registry.getRoute(m)).toBeUndefined();
    // Past the code, the CHECK constraints: a row cannot name an owner that is not one.
    await expect(t.db.query("INSERT INTO routes (model, spec, generation, owner, updated_by) VALUES ($1, NULL, 1, 'bandit', 'x')", [m])).rejects.toMatchObject({ code: '23514' });
    await expect(t.db.query("INSERT INTO model_lineage (model, action, route_generation, actor) VALUES ($1, 'route_set', 1, 'x')", [m])).rejects.toMatchObject({ code: '23514' });
  });

  it('a manual change racing an experiment\'s never lands over it unforced (checked under the model lock)', async () => {
    const m = await model();
    const other = backend.name === 'postgres' ? new Registry(await t.connect!(), registry.artifacts) : registry;
    for (let i = 0; i < 15; i++) {
      await registry.setRoute(m, spec(m, `base-${i}`), { actor: 'ops' }); // manual: both may go first
      const [exp, man] = await Promise.allSettled([
        registry.setRoute(m, spec(m, `exp-${i}`), { actor: 'experiments', owner: 'experiment' }),
        other.setRoute(m, spec(m, `ops-${i}`), { actor: 'ops' }),
      ]);
      expect(exp.status).toBe('fulfilled');
      const final = (await registry.getRoute(m))!;
      if (man.status === 'rejected') {
        // The experiment went first: the manual change was refused, the experiment's route stands.
        expect(man.reason).toMatchObject({ code: 'ROUTE_OWNED' });
        expect(final).toMatchObject({ owner: 'experiment' });
        expect(final.spec.salt).toBe(`exp-${i}`);
      } else {
        // The manual change went first; the experiment's replaced it.
        expect(final).toMatchObject({ owner: 'experiment' });
        expect(final.spec.salt).toBe(`exp-${i}`);
      }
      await registry.clearRoute(m, { actor: 'experiments', owner: 'experiment' });
    }
    // In the audit log, no manual set without force ever follows an experiment's set.
    const audit = await routeAudit(m);
    for (let i = 1; i < audit.length; i++) {
      const prev = audit[i - 1] as { action: string; routeOwner: string };
      const cur = audit[i] as { action: string; routeOwner: string; forcedOver: string | null };
      if (prev.action === 'route_set' && prev.routeOwner === 'experiment' && cur.routeOwner === 'manual') expect(cur.forcedOver).toBe('experiment');
    }
  });

  it('migration 005 makes routes stored before it manual, and their audit rows read as manual', async () => {
    const bare = await openBareDb(backend);
    try {
      const all = await loadMigrations();
      const before = all.filter((x) => x.id < 5);
      expect(all.find((x) => x.id === 5)?.name).toBe('route_owner');
      await migrate(bare.db, before);
      const m = 'old-route';
      const json = JSON.stringify(routeJson(spec(m)));
      await bare.db.query('INSERT INTO models (name) VALUES ($1)', [m]);
      await bare.db.query("INSERT INTO model_versions (model, version, kind, signature, manifest, artifact_key, artifact_file, size_bytes, sha256, created_by) SELECT $1, v, 'logistic', '{}', '{}', 'k', 'f', 0, repeat('a', 64), 'x' FROM unnest(ARRAY['1', '2']) AS v", [m]);
      await bare.db.query("INSERT INTO routes (model, spec, generation, updated_by) VALUES ($1, $2::jsonb, 1, 'old-admin')", [m, json]);
      await bare.db.query("INSERT INTO model_lineage (model, action, route, route_generation, actor) VALUES ($1, 'route_set', $2::jsonb, 1, 'old-admin')", [m, json]);

      expect(await migrate(bare.db, all)).toEqual(all.filter((x) => x.id >= 5).map((x) => x.id));
      const old = new Registry(bare.db, new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts-bare')));
      expect(await old.getRoute(m)).toMatchObject({ owner: 'manual', generation: 1, updatedBy: 'old-admin' });
      expect((await old.audit({ model: m }))[0]).toMatchObject({ action: 'route_set', routeOwner: 'manual', forcedOver: null, routeGeneration: 1 });
      // And it behaves as a manual route: an experiment takes it over without force.
      expect(await old.setRoute(m, spec(m, 'exp'), { actor: 'experiments', owner: 'experiment' })).toMatchObject({ generation: 2, forcedOver: null });
      await expect(old.clearRoute(m, { actor: 'ops' })).rejects.toMatchObject({ code: 'ROUTE_OWNED' });
    } finally {
      await bare.cleanup();
    }
  });
});
