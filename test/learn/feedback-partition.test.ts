/**
 * Feedback under load while the network to a real PostgreSQL fails, through a TCP proxy of the
 * test's own (tcpGate): the connections are cut (closed without a word from the server), then,
 * soon after recovery and while the first outage's local log is still being replayed, the
 * database stops answering altogether (a partition: only timeouts can end a wait). The design
 * rule under test: an acknowledgement never waits on a database that is not answering for longer
 * than a bounded time; it falls back to the local log. And the process survives every cut (a
 * checked-out connection failing between statements used to throw an unhandled 'error').
 * At the end every acknowledged event is stored exactly once.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { FeedbackIntake } from '../../src/learn/feedback-intake.js';
import type { FeedbackOutcome } from '../../src/learn/feedback.js';
import { migrate } from '../../src/registry/migrate.js';
import { PgDb } from '../../src/registry/pg-db.js';
import { createPgDatabase, describeWith, eventually, postgresService, tcpGate, tempDir } from '../helpers/services.js';
import { decision, sleep } from './helpers.js';

const CONNECT_TIMEOUT_MS = 500;
const QUERY_TIMEOUT_MS = 1_000;
/**
 * The longest an answer may take while the database fails: the statement in flight times out
 * (QUERY_TIMEOUT_MS; a new connection gives up sooner), the batches queued behind it go to the
 * local log at once. The rest is room for a loaded 2-core machine.
 */
const ANSWER_BOUND_MS = QUERY_TIMEOUT_MS + CONNECT_TIMEOUT_MS + 2_000;

describeWith(postgresService, 'feedback while the network to PostgreSQL is cut, then silent', () => {
  let database: Awaited<ReturnType<typeof createPgDatabase>>;
  let direct: PgDb;
  let gate: Awaited<ReturnType<typeof tcpGate>>;
  let viaGate: PgDb;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => {
    uncaught.push(e);
  };

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught);
    database = await createPgDatabase();
    direct = new PgDb(database.url);
    await migrate(direct);
    gate = await tcpGate(database.url);
    const url = new URL(database.url);
    url.port = String(gate.port);
    viaGate = new PgDb(url.toString(), { connectTimeoutMs: CONNECT_TIMEOUT_MS, queryTimeoutMs: QUERY_TIMEOUT_MS });
    tmp = await tempDir();
  });
  afterAll(async () => {
    await gate?.close();
    await viaGate?.close();
    await direct?.close();
    await database?.drop();
    await tmp?.cleanup();
    process.off('uncaughtException', onUncaught);
  });

  it('answers within a bounded time through a cut and a partition soon after it, and stores every acknowledged event once', async () => {
    const N = 40_000;
    // Decisions with client-made ids, committed (directly) before the feedback comes.
    const setupLog = new DecisionLog(direct, { capacity: N, batchSize: 2_000, flushMs: 5 });
    const ids = Array.from({ length: N }, (_, i) => `partition-${i}`);
    for (const id of ids) setupLog.offer(decision({ eventId: id }));
    await setupLog.flush();
    await setupLog.close();
    expect(setupLog.stats.logged).toBe(N);

    const decisions = new DecisionLog(viaGate, { capacity: 1_000, batchSize: 500, flushMs: 10 });
    const intake = new FeedbackIntake({
      db: viaGate, dataDir: tmp.dir, decisions, joinWindowMs: 86_400_000, batchSize: 200, flushMs: 2, probeMinMs: 50, probeMaxMs: 300,
    });
    await intake.start();

    const acked = new Set<string>();
    const refused: FeedbackOutcome[] = [];
    let slowest = 0;
    let next = 0;
    let paused = false;
    const client = async (until: number): Promise<void> => {
      while (next < until) {
        if (paused) {
          await sleep(5);
          continue;
        }
        const from = next;
        next = Math.min(until, next + 25);
        const t0 = performance.now();
        const out = await intake.submit(ids.slice(from, next).map((id) => ({ eventId: id, reward: 1 })));
        slowest = Math.max(slowest, performance.now() - t0);
        for (const o of out) {
          if ('status' in o) acked.add(o.event_id);
          else refused.push(o);
        }
      }
    };
    const phase = (until: number) => Promise.all(Array.from({ length: 8 }, () => client(until)));

    await phase(N * 0.1);
    expect(intake.stats.localMode).toBe(false);

    // 1. Cut: every connection closes, mid-transaction for the batch in flight.
    const cut = phase(N * 0.5);
    await sleep(20);
    gate.down();
    await cut;
    expect(intake.stats.localMode).toBe(true);
    expect(intake.stats.replayPending).toBeGreaterThan(1_000);

    // 2. Back: the replayer finds the database and starts replaying the local log. New
    // batches are paused meanwhile so that the replay is certainly still running when...
    paused = true;
    const load = phase(N);
    gate.up();
    await eventually(() => (intake.stats.localMode ? undefined : true), 10_000, 'the intake to find the database again', 1);
    const replayingAtPartition = intake.stats.replayPending;
    // 3. ...the database stops answering (a partition), under load again.
    gate.silence();
    paused = false;
    await phase(N * 0.75);
    expect(intake.stats.localMode).toBe(true);
    await sleep(QUERY_TIMEOUT_MS); // the replayer's probes time out meanwhile
    gate.up();
    await load;

    expect(uncaught).toEqual([]);
    expect(refused).toEqual([]);
    expect(acked.size).toBe(N);
    // The first outage's log was still being replayed when the second began.
    expect(replayingAtPartition).toBeGreaterThan(0);
    console.log(`feedback partition: slowest answer ${slowest.toFixed(0)} ms (bound ${ANSWER_BOUND_MS} ms), ${replayingAtPartition} events still to replay when the partition began`);
    expect(slowest).toBeLessThan(ANSWER_BOUND_MS);

    await eventually(() => (intake.stats.replayPending === 0 && !intake.stats.localMode ? true : undefined), 30_000, 'the local log to be replayed', 50);
    await intake.close();
    await decisions.close();
    const rows = await direct.query<{ event_id: string }>("SELECT event_id FROM feedback_events WHERE event_id LIKE 'partition-%'");
    const stored = new Set(rows.map((r) => r.event_id));
    expect([...acked].filter((id) => !stored.has(id)), 'lost').toEqual([]);
    expect(rows.length, 'duplicates').toBe(stored.size);
    expect(uncaught).toEqual([]);
  }, 120_000);
});
