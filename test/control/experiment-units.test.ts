/**
 * The triggers of migrations 008 and 012 that keep `experiment_units`: decisions (rows, or a
 * thread's chunk) and joined feedback
 * under an active experiment's route generation add to their unit, once per stored row, in the
 * statement that stores them; everything else leaves the table alone.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDb, type TestDb } from '../helpers/services.js';
import { insertRows } from '../../src/learn/feedback-store.js';
import type { Decision } from '../../src/learn/decision.js';
import { DecisionChunkBuilder, latin1, chunkVariant } from '../../src/learn/decision-chunk.js';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { lastEventIdMs, newEventId } from '../../src/learn/event-id.js';

describeEachDb('experiment_units triggers', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await backend.open();
    await t.db.query("INSERT INTO models (name) VALUES ('m'), ('other')");
    await t.db.query("INSERT INTO experiments (name, model, spec, status, created_by) VALUES ('e1', 'm', '{}', 'running', 'k')");
    await t.db.query(`INSERT INTO experiment_periods (model, route_gen, experiment_id, weights, per_event) VALUES
      ('m', 1, 1, '[0.5, 0.5]', false), ('m', 2, 1, '[0.7, 0.3]', false)`);
  }, 60_000);
  afterAll(async () => t?.cleanup());

  const decide = (rows: Array<[string, string, string | null, number, number]>) => t.db.query(
    `INSERT INTO decisions (event_id, at, model, variant, version, unit_id, propensity, route_gen)
     SELECT e, to_timestamp(a / 1000.0), m, v, '1', u, 0.5, g FROM jsonb_to_recordset($1::jsonb) AS x(e text, a float8, m text, v text, u text, g bigint)
     ON CONFLICT (event_id) DO NOTHING`,
    [JSON.stringify(rows.map(([e, v, u, g, a]) => ({ e, m: 'm', v, u, g, a })))],
  );
  const units = () => t.db.query<{ unit: string; variant: string; route_gen: string; crossed: boolean; events: number; reward_sum: number; converted: boolean }>(
    'SELECT unit, variant, route_gen::text, crossed, events, reward_sum, converted FROM experiment_units ORDER BY unit',
  );
  const sums = () => t.db.query<{ variant: string; route_gen: string; units: string; crossed: string; with_feedback: string; mean_sum: number; mean_sumsq: number; sum_sum: number; sum_sumsq: number; converted: string }>(
    `SELECT variant, route_gen::text, units::text, crossed::text, with_feedback::text, mean_sum, mean_sumsq, sum_sum, sum_sumsq, converted::text
       FROM experiment_sums ORDER BY variant, route_gen`,
  );
  const decision = (eventId: string, variant: string, unitId: string | undefined, routeGen: number, at: number, model = 'm'): Decision => ({
    eventId, at, model, variant, version: '1', propensity: 0.5, routeGen, ...(unitId ? { unitId } : {}),
  });

  it('a decision exposes its unit once, in its first variant; a repeat in a batch or a later batch adds nothing', async () => {
    await decide([['e1', 'a', 'u1', 1, 1000], ['e2', 'a', 'u1', 1, 1001], ['e3', 'b', 'u2', 1, 1002], ['e4', 'b', null, 1, 1003]]);
    await decide([['e1', 'a', 'u1', 1, 1000], ['e5', 'a', 'u2', 2, 2000]]);
    expect(await units()).toEqual([
      { unit: 'u1', variant: 'a', route_gen: '1', crossed: false, events: 0, reward_sum: 0, converted: false },
      // u2 later decided under another variant (a weight change moved it): crossed, first variant kept
      { unit: 'u2', variant: 'b', route_gen: '1', crossed: true, events: 0, reward_sum: 0, converted: false },
    ]);
  });

  it('joined feedback adds to the unit of its decision; unjoined, repeated or other-model feedback does not', async () => {
    const row = (e: string, reward: number, d?: Decision) => ({ eventId: e, reward, unitId: 'client-id', at: 3000, receivedAt: 3000, decision: d, viaLocalLog: false });
    await t.db.transaction((tx) => insertRows(tx, [
      row('e1', 1, decision('e1', 'a', 'u1', 1, 1000)),
      row('e2', 0, decision('e2', 'a', 'u1', 1, 1001)),
      row('e3', 2.5, decision('e3', 'b', 'u2', 1, 1002)),
      row('x1', 9),
      row('o1', 9, decision('o1', 'a', 'u1', 1, 1000, 'other')),
    ]));
    await t.db.transaction((tx) => insertRows(tx, [row('e1', 1, decision('e1', 'a', 'u1', 1, 1000))]));
    expect(await units()).toEqual([
      { unit: 'u1', variant: 'a', route_gen: '1', crossed: false, events: 2, reward_sum: 1, converted: true },
      { unit: 'u2', variant: 'b', route_gen: '1', crossed: true, events: 1, reward_sum: 2.5, converted: true },
    ]);
    // The sums hold the units' figures: u1 x = 1/2 (mean), 1 (sum); u2 x = 2.5 for both.
    expect(await sums()).toEqual([
      { variant: 'a', route_gen: '1', units: '1', crossed: '0', with_feedback: '1', mean_sum: 0.5, mean_sumsq: 0.25, sum_sum: 1, sum_sumsq: 1, converted: '1' },
      { variant: 'b', route_gen: '1', units: '1', crossed: '1', with_feedback: '1', mean_sum: 2.5, mean_sumsq: 6.25, sum_sum: 2.5, sum_sumsq: 6.25, converted: '1' },
    ]);
  });

  it('the sums equal a recount of the units after many batches', async () => {
    await t.db.query('UPDATE experiment_periods SET active = true');
    const rows: Parameters<typeof insertRows>[1] = [];
    for (let i = 0; i < 300; i++) {
      const unit = `r${i % 40}`;
      rows.push({ eventId: `r-${i}`, reward: (i * 7) % 5 === 0 ? 0 : ((i * 13) % 11) / 4, unitId: undefined, at: 6000 + i, receivedAt: 6000 + i, decision: decision(`r-${i}`, i % 40 < 20 ? 'a' : 'b', unit, 1, 6000 + i), viaLocalLog: false });
    }
    for (let i = 0; i < rows.length; i += 37) await t.db.transaction((tx) => insertRows(tx, rows.slice(i, i + 37)));
    const recount = await t.db.query<Record<string, unknown>>(
      `SELECT variant, route_gen::text, count(*)::text AS units, count(*) FILTER (WHERE crossed)::text AS crossed,
              count(*) FILTER (WHERE events > 0)::text AS with_feedback,
              coalesce(sum(reward_sum / events) FILTER (WHERE events > 0), 0) AS mean_sum,
              coalesce(sum((reward_sum / events) ^ 2) FILTER (WHERE events > 0), 0) AS mean_sumsq,
              sum(reward_sum) AS sum_sum, sum(reward_sum ^ 2) AS sum_sumsq, count(*) FILTER (WHERE converted)::text AS converted
         FROM experiment_units GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    expect((await units()).filter((u) => u.unit.startsWith('r'))).toHaveLength(40);
    const got = await sums();
    expect(got.map((r) => [r.variant, r.route_gen, r.units, r.crossed, r.with_feedback, r.converted])).toEqual(recount.map((r) => [r.variant, r.route_gen, r.units, r.crossed, r.with_feedback, r.converted]));
    for (let i = 0; i < got.length; i++) {
      for (const k of ['mean_sum', 'mean_sumsq', 'sum_sum', 'sum_sumsq'] as const) expect(got[i]![k]).toBeCloseTo(Number(recount[i]![k]), 9);
    }
  });

  it('feedback that overtakes its decision starts the unit; an inactive period adds nothing', async () => {
    const d = decision('e9', 'b', 'u9', 2, 4000);
    await t.db.transaction((tx) => insertRows(tx, [{ eventId: 'e9', reward: 0, unitId: undefined, at: 4001, receivedAt: 4001, decision: d, viaLocalLog: false }]));
    await decide([['e9', 'b', 'u9', 2, 4000]]);
    const u9 = (await units()).find((u) => u.unit === 'u9');
    expect(u9).toEqual({ unit: 'u9', variant: 'b', route_gen: '2', crossed: false, events: 1, reward_sum: 0, converted: false });
    await t.db.query('UPDATE experiment_periods SET active = false');
    await decide([['e10', 'a', 'u10', 1, 5000]]);
    expect((await units()).find((u) => u.unit === 'u10')).toBeUndefined();
  });

  it.each([
    ['whole rows (ids made elsewhere, migration 012)', 'c', 3, false],
    ['short rows (the builder\'s own ids, migration 014)', 's', 4, true],
  ])('decisions stored as a thread\'s chunk of %s expose their units as rows do', async (_, p, gen, own) => {
    await t.db.query(`INSERT INTO experiment_periods (model, route_gen, experiment_id, weights, per_event) VALUES ('m', $1, 1, '[0.5, 0.5]', false)`, [gen]);
    const b = new DecisionChunkBuilder();
    const add = (variant: string, unit: string | undefined, model = 'm', g = gen) => {
      const id = own ? b.nextId() : newEventId();
      b.add(id, lastEventIdMs(), chunkVariant(model, variant, '1', g), unit, 0.5, undefined);
    };
    add('a', `${p}1`);
    add('a', `${p}1`);
    add('b', `${p}2`);
    add('a', `${p}2`); // crossed
    add('a', undefined); // no unit: not exposed
    add('a', `${p}3`, 'other'); // another model
    add('a', `${p}4`, 'm', 99); // a generation no experiment runs
    const chunk = b.take()!;
    expect(latin1(chunk.rows).includes('"x":')).toBe(own);
    const log = new DecisionLog(t.db, { capacity: 100, batchSize: 100, flushMs: 60_000 });
    expect(log.offerChunk(chunk)).toBe(true);
    await log.close();
    expect((await units()).filter((u) => u.unit.startsWith(p))).toEqual([
      { unit: `${p}1`, variant: 'a', route_gen: String(gen), crossed: false, events: 0, reward_sum: 0, converted: false },
      { unit: `${p}2`, variant: 'b', route_gen: String(gen), crossed: true, events: 0, reward_sum: 0, converted: false },
    ]);
  });
});
