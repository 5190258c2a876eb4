/**
 * Issue #12's feedback durability acceptance, through a real Sluice process on a private
 * PostgreSQL: 100,000 feedback events with client-made ids, sent concurrently in batches of 100
 * by clients that retry until every event is acknowledged, while PostgreSQL is stopped and
 * started again (the intake falls back to its fsynced local log, then replays it) and the
 * Sluice process is SIGKILLed and started again on the same data directory (the local log is
 * replayed at start). Then: every acknowledged event is in the database exactly once, with the
 * reward it was sent with (lost = 0, duplicates = 0).
 *
 * The second scenario stops PostgreSQL twice, the second time soon after the first outage ended
 * (while its local log may still be replaying). It once stalled acknowledgements for the whole
 * test timeout in CI: the server process had died of an unhandled pg 'error' event (a pooled
 * connection checked out for a transaction, told "terminating connection" by the stopping
 * server between two statements; see test/registry/pg-connection-loss.test.ts). Hence the
 * checks here: a server process that exits by itself, or no acknowledgement for STALL_MS, fails
 * the test at once, printing the server's last log lines (a crash's stack trace among them).
 *
 * The decisions the events answer are written to the database first, under client-made ids
 * (what a client that names its own impressions would have): the routing path that makes
 * decisions is tested by routes-wire.test.ts; this file is about the feedback path's durability.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSluiceProcess, type SluiceProcess } from '../../loadtest/sluice-process.js';
import { describeWith, pgServerService, startPrivatePostgres, tempDir } from '../helpers/services.js';

const EVENTS = Number(process.env.SLUICE_TEST_FEEDBACK_EVENTS ?? 100_000);
const BATCH = 100;
const CLIENTS = 16;
/** No acknowledgement for this long is a stall: fail at once, with the server's log, not at the test timeout. */
const STALL_MS = 60_000;
/** Server log lines kept for a failure's report. */
const LOG_TAIL = 200;

describeWith(pgServerService, 'feedback durability: PostgreSQL stopped and restarted, Sluice SIGKILLed and restarted', () => {
  let server: Awaited<ReturnType<typeof startPrivatePostgres>>;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let sluice: SluiceProcess | undefined;
  const adminKey = `sk_durable_${randomBytes(24).toString('hex')}`;
  let env: Record<string, string>;
  /** The last lines each server process wrote (its JSON log, and a crash's stack trace). */
  const logTail: string[] = [];
  /** Set when a server process exits without being killed by the test (a crash). */
  let crashed: string | undefined;

  const launch = async (): Promise<SluiceProcess> => {
    logTail.push(`---- server process started at ${new Date().toISOString()}`);
    const s = await startSluiceProcess({
      env,
      onLog: (line) => {
        logTail.push(line);
        if (logTail.length > LOG_TAIL) logTail.splice(0, logTail.length - LOG_TAIL);
      },
    });
    s.child.once('exit', (code, signal) => {
      if (signal !== 'SIGKILL') crashed ??= `the server process exited by itself (code ${code}, signal ${signal})`;
    });
    return s;
  };
  /** Runs `fn`; on failure prints the server's log tail first (why it stalled or crashed). */
  const reportingLog = async (fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      console.error(`feedback durability failed; the server's last ${logTail.length} log lines:\n${logTail.join('\n')}`);
      throw e;
    }
  };

  beforeAll(async () => {
    server = await startPrivatePostgres();
    dir = await tempDir('sluice-durable-');
    env = {
      SLUICE_DATABASE_URL: server.url, SLUICE_DATA_DIR: dir.dir, SLUICE_ADMIN_KEY: adminKey, SLUICE_WORKERS: '1',
      SLUICE_LOG_LEVEL: 'info',
    };
    sluice = await launch();
  }, 180_000);

  /** The server's sluice_feedback_replay_pending gauge ('?' if it cannot be read). */
  const replayPending = async (): Promise<string> => {
    try {
      const res = await fetch(`${sluice!.http}/metrics`, { headers: { authorization: `Bearer ${adminKey}` }, signal: AbortSignal.timeout(5_000) });
      return /^sluice_feedback_replay_pending (\S+)$/m.exec(await res.text())?.[1] ?? '?';
    } catch {
      return '?';
    }
  };

  /** The decisions the events answer, under client-made ids `<prefix>-<i>`. */
  const insertDecisions = async (prefix: string) => {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      const ids = Array.from({ length: EVENTS }, (_, i) => `${prefix}-${i}`);
      for (let i = 0; i < EVENTS; i += 10_000) {
        await c.query(
          `INSERT INTO decisions (event_id, at, model, variant, version, propensity, route_gen)
           SELECT id, now(), 'demo-logistic', 'a', '1', 1, 1 FROM unnest($1::text[]) AS id`, [ids.slice(i, i + 10_000)]);
      }
    } finally {
      await c.end();
    }
  };
  afterAll(async () => {
    sluice?.child.kill('SIGKILL');
    await server?.destroy();
    await dir?.cleanup();
  });

  it('every acknowledged event is stored exactly once (lost = 0, duplicates = 0)', () => reportingLog(() => scenario('client', false)), 600_000);

  it('keeps acknowledging through a second outage soon after the first', () => reportingLog(() => scenario('second', true)), 600_000);

  async function scenario(prefix: string, secondOutage: boolean): Promise<void> {
    // Whatever an earlier scenario's failure left behind: PostgreSQL up, a live server.
    await server.start();
    if (crashed || !sluice || sluice.child.exitCode !== null || sluice.child.signalCode !== null) {
      sluice?.child.kill('SIGKILL');
      await sluice?.exited;
      crashed = undefined;
      sluice = await launch();
    }
    await insertDecisions(prefix);
    const reward = (i: number) => (i % 7) / 7;
    const acked = new Set<number>();
    let next = 0;
    let attempts = 0;
    let refusals = 0;
    // Set when the scenario fails: its clients stop instead of retrying into the next test.
    let abandoned = false;
    const client = async () => {
      for (;;) {
        const start = next;
        if (start >= EVENTS || abandoned) return;
        next += BATCH;
        const batch = Array.from({ length: Math.min(BATCH, EVENTS - start) }, (_, k) => start + k);
        // Retry this batch until each of its events is acknowledged (accepted or duplicate).
        let todo = batch;
        while (todo.length > 0 && !abandoned) {
          attempts++;
          const s = sluice;
          try {
            if (!s) throw new Error('restarting');
            const res = await fetch(`${s.http}/v1/feedback`, {
              method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
              body: JSON.stringify({ events: todo.map((i) => ({ event_id: `${prefix}-${i}`, reward: reward(i) })) }),
              signal: AbortSignal.timeout(10_000),
            });
            const json = await res.json() as { results?: Array<{ status?: string; error?: { code: string } }> };
            if (res.status !== 200 || !json.results) throw new Error(`status ${res.status}`);
            const left: number[] = [];
            json.results.forEach((r, k) => {
              if (r.status === 'accepted' || r.status === 'duplicate') acked.add(todo[k]!);
              else {
                refusals++;
                left.push(todo[k]!);
              }
            });
            todo = left;
          } catch {
            // Connection refused (killed), timeouts, 503s: the events are not acknowledged; retry.
          }
          if (todo.length > 0) await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    const progress = () => acked.size;
    const t0 = Date.now();
    const waitFor = async (n: number) => {
      let seen = progress();
      let since = Date.now();
      while (progress() < n) {
        if (crashed) throw new Error(crashed);
        if (progress() !== seen) {
          seen = progress();
          since = Date.now();
        } else if (Date.now() - since > STALL_MS) {
          throw new Error(`no acknowledgement for ${STALL_MS / 1000} s (stalled at ${seen} of ${EVENTS})`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      console.log(`feedback durability: ${progress()} acknowledged after ${((Date.now() - t0) / 1000).toFixed(1)} s (${attempts} requests, ${refusals} refusals)`);
    };
    try {
      // PostgreSQL goes away for a while, then Sluice is killed mid-stream and restarted.
      await waitFor(EVENTS * 0.1);
      await server.stop();
      await waitFor(EVENTS * 0.3);
      await server.start();
      await waitFor(EVENTS * 0.45);
      if (secondOutage) {
        // Whether the first outage's log is still replaying as the second begins varies with
        // the machine's speed: said, not asserted (feedback-partition.test.ts asserts it).
        console.log(`feedback durability: second outage begins with ${await replayPending()} events of the first still to replay`);
        await server.stop();
        await waitFor(EVENTS * 0.55);
      }
      const killed = sluice!;
      sluice = undefined;
      killed.child.kill('SIGKILL');
      await killed.exited;
      if (secondOutage) await server.start();
      sluice = await launch();
      await waitFor(EVENTS);
      await Promise.all(clients);
    } finally {
      abandoned = true;
    }
    expect(acked.size).toBe(EVENTS);

    // Every acknowledged event in the database, once, with its reward (the replay may still run).
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      let rows: Array<{ event_id: string; reward: number }> = [];
      const until = Date.now() + 60_000;
      for (;;) {
        rows = (await c.query<{ event_id: string; reward: number }>("SELECT event_id, reward FROM feedback_events WHERE event_id LIKE $1", [`${prefix}-%`])).rows;
        if (rows.length >= EVENTS || Date.now() > until) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const stored = new Map(rows.map((r) => [r.event_id, r.reward]));
      const lost = [...acked].filter((i) => !stored.has(`${prefix}-${i}`));
      const duplicates = rows.length - stored.size;
      const wrong = [...acked].filter((i) => stored.has(`${prefix}-${i}`) && stored.get(`${prefix}-${i}`) !== reward(i));
      console.log(`feedback durability: ${acked.size} acknowledged in ${attempts} requests (${refusals} refusals retried), ${rows.length} stored, lost ${lost.length}, duplicates ${duplicates}`);
      expect({ lost: lost.length, duplicates, wrong: wrong.length }).toEqual({ lost: 0, duplicates: 0, wrong: 0 });
      expect(rows.length).toBe(EVENTS);
      // The outage was real: some events were acknowledged from the local log and replayed.
      const viaLog = Number((await c.query("SELECT count(*) AS n FROM feedback_events WHERE via_local_log AND event_id LIKE $1", [`${prefix}-%`])).rows[0].n);
      console.log(`feedback durability: ${viaLog} events acknowledged from the local log while PostgreSQL was away`);
      expect(viaLog).toBeGreaterThan(0);
    } finally {
      await c.end();
    }
  }
});
