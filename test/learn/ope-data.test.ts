/**
 * loadLoggedEvents (src/learn/ope-data.ts) on PGlite (and PostgreSQL when the test services run):
 * which feedback rows count as logged bandit events, the filters, the limit, contexts joined
 * from the decisions, and an evaluation on loaded rows equal to the numpy/scipy reference.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { newEventId } from '../../src/learn/event-id.js';
import { evaluatePolicy, uniformPolicy } from '../../src/learn/ope.js';
import { loadLoggedEvents } from '../../src/learn/ope-data.js';
import { projectRoot } from '../../src/paths.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';

/** Features as the `context` column stores them: float32 bytes, little-endian. */
function contextBytes(f: number[] | Float32Array): Buffer {
  const x = Float32Array.from(f);
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength);
}

const T0 = Date.UTC(2026, 0, 1);

interface Logged {
  model?: string;
  version?: string;
  action?: number | null;
  propensity?: number;
  reward?: number;
  /** Decision time, ms. */
  at?: number;
  features?: number[] | null;
  joined?: boolean;
  /** Whether the decision row exists (feedback keeps its copy of the fields either way). */
  decision?: boolean;
}

describeEachDb('loadLoggedEvents', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await backend.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  async function log(over: Logged): Promise<void> {
    const e = { model: 'bandit', version: '1', action: 0, propensity: 0.5, reward: 1, at: T0, features: null, joined: true, decision: true, ...over };
    const id = newEventId();
    if (e.decision) {
      await t.db.query(
        `INSERT INTO decisions (event_id, at, model, variant, version, propensity, route_gen, context, action)
         VALUES ($1, to_timestamp($2::float8 / 1000), $3, 'a', $4, $5, 1, $6::bytea, $7)`,
        [id, e.at, e.model, e.version, e.propensity, e.features ? contextBytes(e.features) : null, e.action],
      );
    }
    await t.db.query(
      `INSERT INTO feedback_events (event_id, reward, at, received_at, joined, decided_at, model, variant, version, propensity, route_gen, action)
       VALUES ($1, $2, to_timestamp($3::float8 / 1000), to_timestamp($3::float8 / 1000), $4, $5, $6, $7, $8, $9, $10, $11)`,
      e.joined
        ? [id, e.reward, e.at + 1000, true, new Date(e.at).toISOString(), e.model, 'a', e.version, e.propensity, 1, e.action]
        : [id, e.reward, e.at + 1000, false, null, null, null, null, null, null, null],
    );
  }

  it('reads joined feedback with an action, oldest first, with the decision\'s features', async () => {
    await log({ model: 'm1', action: 2, propensity: 0.25, reward: 3, at: T0 + 2000, features: [0.1, -2] });
    await log({ model: 'm1', action: 0, propensity: 0.5, reward: 0.5, at: T0 + 1000 }); // no features logged
    await log({ model: 'm1', action: 1, propensity: 1, reward: -1, at: T0 + 3000, features: [1, 2], decision: false }); // decision row gone
    await log({ model: 'm1', action: null, at: T0 + 4000 }); // a routed decision, not a bandit's
    await log({ model: 'm1', joined: false, at: T0 + 5000 }); // feedback never joined
    await log({ model: 'other', action: 4, at: T0 + 6000 });
    const { events, arms } = await loadLoggedEvents(t.db, 'm1');
    expect(events).toEqual([
      { action: 0, propensity: 0.5, reward: 0.5 },
      { action: 2, propensity: 0.25, reward: 3, context: Float32Array.of(0.1, -2) },
      { action: 1, propensity: 1, reward: -1 },
    ]);
    expect(events[1]!.context![0]).toBe(Math.fround(0.1)); // real[] keeps the float32 exactly
    expect(arms).toBe(3);
  });

  it('filters by version and decision time, and keeps the most recent within the limit', async () => {
    for (let i = 0; i < 6; i++) await log({ model: 'm2', version: i % 2 ? '2' : '1', action: i, reward: i, at: T0 + i * 1000 });
    const rewards = async (o: Parameters<typeof loadLoggedEvents>[2]) => (await loadLoggedEvents(t.db, 'm2', o)).events.map((e) => e.reward);
    expect(await rewards({})).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await rewards({ version: '2' })).toEqual([1, 3, 5]);
    expect(await rewards({ since: T0 + 2000 })).toEqual([2, 3, 4, 5]); // inclusive
    expect(await rewards({ until: T0 + 2000 })).toEqual([0, 1]); // exclusive
    expect(await rewards({ since: T0 + 1000, until: T0 + 5000, version: '1' })).toEqual([2, 4]);
    expect(await rewards({ limit: 2 })).toEqual([4, 5]);
    expect((await loadLoggedEvents(t.db, 'm2', { version: '2' })).arms).toBe(6);
  });

  it('no events: an empty list and 0 arms, which the evaluation refuses', async () => {
    const r = await loadLoggedEvents(t.db, 'nothing-here');
    expect(r).toEqual({ events: [], arms: 0 });
    expect(() => evaluatePolicy(r.events, uniformPolicy(2))).toThrow(expect.objectContaining({ code: 'NO_LOGGED_EVENTS' }));
  });

  it('refuses bad options with a code', async () => {
    const code = async (model: string, o: Parameters<typeof loadLoggedEvents>[2]) => {
      try {
        await loadLoggedEvents(t.db, model, o);
        return 'no error';
      } catch (e) {
        expect(e).toBeInstanceOf(SluiceError);
        return (e as SluiceError).code;
      }
    };
    expect(await code('bad name!', {})).toBe('NAME_INVALID');
    expect(await code('m', { version: "1'; DROP TABLE decisions; --" })).toBe('NAME_INVALID');
    expect(await code('m', { since: NaN })).toBe('INVALID_ARGUMENT');
    expect(await code('m', { until: Infinity })).toBe('INVALID_ARGUMENT');
    for (const limit of [0, 1.5, 2_000_000]) expect(await code('m', { limit }), String(limit)).toBe('INVALID_ARGUMENT');
  });

  it('an evaluation on loaded rows equals the numpy/scipy reference', async () => {
    const ref = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/ope-reference.json'), 'utf8')) as {
      arms: number;
      events: Array<{ action: number; propensity: number; reward: number; context: number[] }>;
      cases: Array<{ policy: string; contexts: boolean; level: number; ips: { value: number }; snips: { value: number }; dr: { value: number; std_error: number } }>;
    };
    for (const [i, e] of ref.events.entries()) await log({ model: 'ref', ...e, features: e.context, at: T0 + i * 1000 });
    const { events, arms } = await loadLoggedEvents(t.db, 'ref');
    expect(arms).toBe(ref.arms);
    const r = evaluatePolicy(events, uniformPolicy(arms));
    const c = ref.cases.find((x) => x.policy === 'uniform' && x.contexts && x.level === 0.95)!;
    for (const [got, want] of [[r.ips.value, c.ips.value], [r.snips.value, c.snips.value], [r.dr.value, c.dr.value], [r.dr.std_error, c.dr.std_error]] as const) {
      expect(Math.abs(got! - want)).toBeLessThanOrEqual(1e-9 * Math.abs(want));
    }
  });
});
