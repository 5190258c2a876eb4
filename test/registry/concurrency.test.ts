/**
 * 1,000 random promote/rollback operations at once, from several clients (several connection
 * pools on PostgreSQL; concurrent calls on the one PGlite instance). Afterwards: exactly one
 * production version; exactly one audit row per applied change; and replaying the audit log
 * serially, with an independent model of the semantics, checks that each change saw the state
 * the previous one left (a serial order) and ends in the database's final state.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalDirectoryStore } from '../../src/artifacts/local.js';
import { SluiceError } from '../../src/errors.js';
import { Registry } from '../../src/registry/registry.js';
import type { AuditEntry, Stage, StageChange } from '../../src/registry/types.js';
import { STAGES } from '../../src/registry/types.js';
import { mulberry32 } from '../helpers/random.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';
import { registerModel, uniqueName } from './models.js';

const OPS = 1000;
const VERSIONS = ['1', '2', '3', '4', '5', '6'];

type Op =
  | { i: number; kind: 'promote'; version: string; stage: Stage }
  | { i: number; kind: 'rollback'; to?: string };

function randomOps(seed: number): Op[] {
  const r = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  return Array.from({ length: OPS }, (_, i): Op => {
    const x = r();
    if (x < 0.3) return { i, kind: 'promote', version: pick(VERSIONS), stage: 'production' };
    if (x < 0.55) return { i, kind: 'promote', version: pick(VERSIONS), stage: pick(STAGES) };
    if (x < 0.85) return { i, kind: 'rollback' };
    return { i, kind: 'rollback', to: pick(VERSIONS) };
  });
}

/** The registry's semantics, written again independently, applied to one audit row at a time. */
class Replay {
  stage = new Map<string, Stage>(VERSIONS.map((v) => [v, 'development']));
  history: string[] = [];

  production(): string | undefined {
    return [...this.stage].find(([, s]) => s === 'production')?.[0];
  }

  apply(row: AuditEntry, op: Op): void {
    const where = `audit row ${row.id} (op ${op.i})`;
    // Narrows the entry to a stage change (this test changes no route).
    if (row.action === 'route_set' || row.action === 'route_clear') throw new Error(`${where}: unexpected ${row.action}`);
    expect(row.fromStage, `${where}: from stage`).toBe(this.stage.get(row.toVersion));
    if (row.toStage === 'production') {
      expect(row.fromVersion, `${where}: replaced production`).toBe(this.production() ?? null);
    }
    if (op.kind === 'promote') {
      expect(row.action, where).toBe('promote');
      expect([row.toVersion, row.toStage], where).toEqual([op.version, op.stage]);
      if (op.stage === 'production') this.history.push(op.version);
    } else {
      expect(row.action, where).toBe('rollback');
      const stack = this.history.slice(0, -1);
      if (op.to === undefined) {
        while (stack.at(-1) === row.fromVersion) stack.pop();
        expect(row.toVersion, `${where}: rollback goes to the previous production version`).toBe(stack.at(-1));
      } else {
        expect(row.toVersion, where).toBe(op.to);
        stack.length = stack.lastIndexOf(op.to) + 1;
        expect(stack.length, `${where}: named target was production before`).toBeGreaterThan(0);
      }
      this.history = stack;
    }
    if (row.toStage === 'production' && row.fromVersion !== null) this.stage.set(row.fromVersion, 'archived');
    this.stage.set(row.toVersion, row.toStage);
  }
}

describeEachDb('concurrent promote/rollback', (backend) => {
  let t: TestDb;
  const registries: Registry[] = [];

  beforeAll(async () => {
    t = await backend.open();
    const store = new LocalDirectoryStore(path.join(t.config.dataDir, 'artifacts'));
    registries.push(new Registry(t.db, store));
    // Several clients: separate connection pools on PostgreSQL.
    if (t.connect) for (let i = 0; i < 3; i++) registries.push(new Registry(await t.connect({ poolSize: 4 }), store));
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it(`leaves one production version and a serial history after ${OPS} random operations`, async () => {
    const model = uniqueName('race');
    const seed = 20_240_601;
    const r0 = registries[0]!;
    for (const v of VERSIONS) await registerModel(r0, model, { version: v });
    const before = (await r0.audit({ model, order: 'asc', limit: 10_000 })).length;
    const ops = randomOps(seed);
    const outcomes = new Map<number, StageChange | string>();
    const runOp = async (op: Op, registry: Registry): Promise<void> => {
      const opts = { actor: `client-${registries.indexOf(registry)}`, reason: `op-${op.i}` };
      try {
        outcomes.set(op.i, op.kind === 'promote'
          ? await registry.promote(model, op.version, op.stage, opts)
          : await registry.rollback(model, { ...opts, ...(op.to !== undefined ? { to: op.to } : {}) }));
      } catch (e) {
        // Refusals that depend on the state the op met; anything else fails the test.
        if (!(e instanceof SluiceError) || !['ROLLBACK_IMPOSSIBLE', 'INVALID_ARGUMENT'].includes(e.code)) throw e;
        outcomes.set(op.i, e.code);
      }
    };
    // Each client keeps several operations in flight; all clients run at once.
    const perClient = registries.map((_, c) => ops.filter((op) => op.i % registries.length === c));
    await Promise.all(perClient.map(async (mine, c) => {
      const inFlight = registries.length > 1 ? 6 : 64;
      let next = 0;
      await Promise.all(Array.from({ length: inFlight }, async () => {
        while (next < mine.length) await runOp(mine[next++]!, registries[c]!);
      }));
    }));
    expect(outcomes.size).toBe(OPS);

    // Exactly one production version (the partial unique index allows at most one; the
    // operations never leave none once there was one).
    const prod = await t.db.query<{ version: string }>("SELECT version FROM model_versions WHERE model = $1 AND stage = 'production'", [model]);
    expect(prod).toHaveLength(1);

    // Exactly one audit row per applied change, and none for refusals or no-ops.
    const applied = [...outcomes.values()].filter((o): o is StageChange => typeof o !== 'string' && o.changed);
    const rows = (await r0.audit({ model, order: 'asc', limit: 10_000 })).slice(before);
    expect(rows).toHaveLength(applied.length);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(applied.map((a) => a.auditId)));
    expect(applied.length).toBeGreaterThan(OPS / 4); // the mix really changes things

    // Replaying the log in id order, as one serial history, reproduces the final state.
    const replay = new Replay();
    for (const row of rows) {
      const op = ops[Number(/^op-(\d+)$/.exec(row.reason)![1])]!;
      replay.apply(row, op);
    }
    const final = await r0.showModel(model);
    expect(Object.fromEntries(final.versions.map((v) => [v.version, v.stage]))).toEqual(Object.fromEntries(replay.stage));
    expect(final.productionVersion).toBe(replay.production());
    expect(final.productionHistory).toEqual(replay.history);
  });
});
