/**
 * Feedback while a real PostgreSQL server is stopped and started again (a server of this
 * test's own, `pg_ctl stop`): events with client-made ids, sent concurrently and some sent
 * twice, are acknowledged throughout (from the local log while the server is down); the intake
 * is stopped while the server is still down and a new one replays the log at its start. Every
 * acknowledged event is in the database exactly once: lost = 0, duplicates = 0.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { FeedbackIntake, type FeedbackOutcome } from '../../src/learn/feedback.js';
import { migrate } from '../../src/registry/migrate.js';
import { PgDb } from '../../src/registry/pg-db.js';
import { describeWith, eventually, pgServerService, startPrivatePostgres, tempDir } from '../helpers/services.js';
import { decision } from './helpers.js';

describeWith(pgServerService, 'feedback while PostgreSQL is stopped and started again', () => {
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let db: PgDb;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    tmp = await tempDir();
    db = new PgDb(pg.url, { connectTimeoutMs: 1_000, queryTimeoutMs: 2_000 });
    await migrate(db);
  }, 120_000);
  afterAll(async () => {
    await db?.close();
    await pg?.destroy();
    await tmp?.cleanup();
  });

  it('loses nothing and stores nothing twice', async () => {
    const N = 6_000;
    const opts = { joinWindowMs: 86_400_000, batchSize: 200, flushMs: 2, probeMinMs: 50, probeMaxMs: 300 };
    let decisions = new DecisionLog(db, { capacity: N, batchSize: 500, flushMs: 10 });
    // Decisions with client-made ids, all committed before the outage.
    const ids = Array.from({ length: N }, (_, i) => `client-${i}-${Math.random().toString(36).slice(2)}`);
    for (const id of ids) decisions.offer(decision({ eventId: id }));
    await decisions.flush();
    expect(decisions.stats.logged).toBe(N);
    let intake = new FeedbackIntake({ db, dataDir: tmp.dir, decisions, ...opts });
    await intake.start();

    const acked = new Map<string, number>();
    const refused: FeedbackOutcome[] = [];
    let next = 0;
    // 8 concurrent clients, batches of 25, every tenth batch sent twice (a client retry).
    const client = async (until: number): Promise<void> => {
      while (next < until) {
        const from = next;
        next = Math.min(until, next + 25);
        const batch = ids.slice(from, next).map((id) => ({ eventId: id, reward: 1 }));
        const sends = from % 250 === 0 ? 2 : 1;
        for (let k = 0; k < sends; k++) {
          for (const o of await intake.submit(batch)) {
            if ('status' in o) acked.set(o.event_id, (acked.get(o.event_id) ?? 0) + 1);
            else refused.push(o);
          }
        }
      }
    };
    const phase = (until: number) => Promise.all(Array.from({ length: 8 }, () => client(until)));

    await phase(N / 3);
    expect(intake.stats.localMode).toBe(false);
    // The server stops while clients are sending.
    const stopping = pg.stop();
    await phase((2 * N) / 3);
    await stopping;
    await phase((2 * N) / 3 + 500);
    expect(intake.stats.localMode).toBe(true);
    expect(intake.stats.replayPending).toBeGreaterThan(0);
    // Stopped while the database is still away: the log stays for the next start.
    await intake.close();
    await decisions.close();
    const pendingAtStop = intake.stats.replayPending;
    expect(pendingAtStop).toBeGreaterThan(0);

    await pg.start();
    decisions = new DecisionLog(db, { capacity: N, batchSize: 500, flushMs: 10 });
    intake = new FeedbackIntake({ db, dataDir: tmp.dir, decisions, ...opts });
    await eventually(async () => ((await db.query('SELECT 1')) ? true : undefined), 30_000, 'PostgreSQL to answer', 200);
    await intake.start();
    expect(intake.stats.replayPending).toBe(0);
    expect(intake.stats.replayed).toBe(pendingAtStop);
    await phase(N);
    await intake.close();
    await decisions.close();

    expect(refused).toEqual([]);
    expect(acked.size).toBe(N);
    const rows = await db.query<{ event_id: string; joined: boolean }>('SELECT event_id, joined FROM feedback_events');
    const inDb = new Set(rows.map((r) => r.event_id));
    const lost = [...acked.keys()].filter((id) => !inDb.has(id));
    expect(lost, 'lost').toEqual([]);
    expect(rows.length, 'duplicates (primary key) or unacknowledged rows').toBe(acked.size);
    // Joined at replay: their decisions were in the database.
    expect(rows.filter((r) => !r.joined)).toEqual([]);
  }, 180_000);
});
