/**
 * The experiment loop against a real database (PGlite, and PostgreSQL with two connections
 * standing for two replicas): a look is skipped while another replica holds the experiment's
 * advisory lock; two replicas looking at once act once; harm stops an experiment without
 * promoting anything; a winner with auto_promote is promoted with the analysis on its audit row,
 * in the transaction that stops it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/version-metrics.js';
import { EXPERIMENT_LOCK, ExperimentLoop } from '../../src/control/experiments/loop.js';
import { parseExperiment } from '../../src/control/experiments/spec.js';
import { createExperiment, getExperiment } from '../../src/control/experiments/store.js';
import type { Db } from '../../src/registry/db.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';

const SHA = 'a'.repeat(64);

describeEachDb('experiment loop', (backend) => {
  let t: TestDb;
  const loop = (db: Db, replica: string) => new ExperimentLoop({ db, intervalMs: 60_000, replica, metrics: async () => new Metrics() });

  beforeAll(async () => {
    t = await backend.open();
    await t.db.query("INSERT INTO models (name) VALUES ('m')");
    for (const v of ['1', '2', '3']) {
      await t.db.query(
        `INSERT INTO model_versions (model, version, kind, signature, manifest, artifact_key, artifact_file, size_bytes, sha256, created_by, stage)
         VALUES ('m', $1, 'linear', '{}', '{}', 'k', 'f', 0, $2, 'test', $3)`, [v, SHA, v === '1' ? 'production' : 'development'],
      );
    }
  }, 60_000);
  afterAll(async () => t?.cleanup());

  /** Units and rewards straight into the tables the triggers read: `n` units per variant. */
  async function traffic(routeGen: number, rewards: Record<string, number>, n: number, tag: string): Promise<void> {
    const rows = Object.entries(rewards).flatMap(([variant, p]) => Array.from({ length: n }, (_, i) => ({ e: `${tag}-${variant}-${i}`, v: variant, u: `${tag}-${variant}-u${i}`, r: (i * 37) % 100 < p * 100 ? 1 : 0 })));
    const json = JSON.stringify(rows);
    await t.db.query(
      `INSERT INTO decisions (event_id, at, model, variant, version, unit_id, propensity, route_gen)
       SELECT e, now(), 'm', v, v, u, 0.5, $2 FROM jsonb_to_recordset($1::jsonb) AS x(e text, v text, u text, r float8)`, [json, routeGen],
    );
    await t.db.query(
      `INSERT INTO feedback_events (event_id, reward, at, received_at, joined, decided_at, model, variant, version, propensity, route_gen, decision_unit_id)
       SELECT e, r, now(), now(), true, now(), 'm', v, v, 0.5, $2, u FROM jsonb_to_recordset($1::jsonb) AS x(e text, v text, u text, r float8)`, [json, routeGen],
    );
  }

  it('skips an experiment whose lock another replica holds, then looks once it is free', async () => {
    const spec = parseExperiment({ name: 'harmful', model: 'm', variants: [{ name: '1', version: '1', weight: 1 }, { name: '2', version: '2', weight: 1 }], primary: { name: 'r', kind: 'mean' }, min_units: 20, auto_promote: true });
    const { record, route } = await createExperiment(t.db, spec, 'test');
    await traffic(route.generation, { 1: 0.6, 2: 0.1 }, 300, 'h');
    const a = loop(t.db, 'a');
    if (t.connect) {
      // Another replica (its own connection) holds the experiment's lock in an open transaction.
      const other = await t.connect();
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = other.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1::int, $2::int)', [EXPERIMENT_LOCK, record.id]);
        locked();
        await held;
      });
      await isLocked;
      expect(await a.tick()).toEqual([{ experiment: 'harmful', action: 'skipped' }]);
      expect((await getExperiment(t.db, 'harmful')).status).toBe('running');
      release();
      await holder;
    }
    // Treatment 2 is far worse: harm, stopped, nothing promoted, the route cleared.
    expect(await a.tick()).toEqual([{ experiment: 'harmful', action: 'harm' }]);
    const e = await getExperiment(t.db, 'harmful');
    expect(e).toMatchObject({ status: 'stopped', promotedVersion: null, outcome: { action: 'harm', variant: '2' } });
    expect(e.lastResults).toMatchObject({ decision: { action: 'harm' } });
    const [r] = await t.db.query<{ spec: unknown; owner: string }>("SELECT spec, owner FROM routes WHERE model = 'm'");
    expect(r).toMatchObject({ spec: null, owner: 'experiment' });
    const [prod] = await t.db.query<{ version: string }>("SELECT version FROM model_versions WHERE model = 'm' AND stage = 'production'");
    expect(prod!.version).toBe('1');
  });

  it('two replicas looking at once act once: one promotion, one audit row with the analysis', async () => {
    const spec = parseExperiment({ name: 'better', model: 'm', variants: [{ name: 'c', version: '1', weight: 1 }, { name: 't', version: '3', weight: 1 }], primary: { name: 'r', kind: 'mean' }, min_units: 20, auto_promote: true });
    const { route } = await createExperiment(t.db, spec, 'test');
    await traffic(route.generation, { c: 0.2, t: 0.7 }, 300, 'b');
    const second = t.connect ? await t.connect() : t.db;
    const outcomes = (await Promise.all([loop(t.db, 'a').tick(), loop(second, 'b').tick()])).flat();
    const acted = outcomes.filter((o) => o.action !== 'skipped');
    expect(acted).toEqual([{ experiment: 'better', action: 'winner', promoted: '3' }]);
    // The other one skipped it (lock taken, or stopped by the time it looked) or found nothing running.
    expect(outcomes.filter((o) => o.action !== 'winner').every((o) => o.action === 'skipped')).toBe(true);
    const audit = await t.db.query<{ to_version: string; analysis: { experiment: string; decision: { variant: string } } }>(
      "SELECT to_version, analysis FROM model_lineage WHERE model = 'm' AND action = 'promote' AND analysis IS NOT NULL",
    );
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ to_version: '3', analysis: { experiment: 'better', decision: { variant: 't' } } });
    const stages = await t.db.query<{ version: string; stage: string }>("SELECT version, stage FROM model_versions WHERE model = 'm' ORDER BY version");
    expect(stages).toEqual([{ version: '1', stage: 'archived' }, { version: '2', stage: 'development' }, { version: '3', stage: 'production' }]);
  });
});
