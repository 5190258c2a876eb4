/**
 * `npm run bench -- feedback [--quick] [--database-url=postgres://...]`: the decision log and
 * the feedback intake (src/learn) on PGlite and, when SLUICE_TEST_DATABASE_URL or
 * --database-url names a PostgreSQL server, on PostgreSQL (in a database of its own, dropped
 * after).
 *
 * Correctness first: concurrent feedback in batches of 100, a tenth of the batches sent twice,
 * must leave every acknowledged event in the database exactly once, joined to its decision;
 * the timed run is checked the same way. Then, per backend:
 *   - decisions logged per second (offered as fast as possible, until all are committed), with
 *     features off and with 100 float32 features;
 *   - feedback events per second durably acknowledged (each answer after its batch's commit),
 *     32 concurrent clients each sending batches of 100, straight into the intake (no HTTP):
 *     with every decision looked up in the database, then with the decisions still in the
 *     memory of the log that wrote them (the same process, soon after: DecisionLog.find);
 *   - the same with the database switched off (each answer after its batch's fdatasync to the
 *     local log), then how fast the log is replayed once it is back (checked like the rest).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { DecisionLog } from '../src/learn/decision-log.js';
import { DecisionChunkBuilder, chunkVariant, type ChunkVariant } from '../src/learn/decision-chunk.js';
import type { Decision } from '../src/learn/decision.js';
import { lastEventIdMs } from '../src/learn/event-id.js';
import { FeedbackIntake, type FeedbackInput } from '../src/learn/feedback.js';
import { unavailable, type Db } from '../src/registry/db.js';
import { pglite, postgres, type Backend } from './backends.js';
import { check, table } from './util.js';

/** Decisions to log (logDecisions gives each its event id and time, as the data plane does). */
function decisions(n: number, features: number): Decision[] {
  return Array.from({ length: n }, (_, i) => ({
    eventId: '', at: 0, model: 'bench', variant: i % 10 === 0 ? 'b' : 'a', version: i % 10 === 0 ? '2' : '1',
    unitId: `unit-${i}`, propensity: i % 10 === 0 ? 0.1 : 0.9, routeGen: 1,
    ...(features > 0 ? { features: Float32Array.from({ length: features }, (_, k) => (i + k) / 7) } : {}),
  }));
}

/**
 * Offers every decision at once, in chunks of 256 as I/O threads hand them over (ids made and
 * rows encoded in the timed part, as on the request path: each decision gets its chunk's event
 * id, at the time the id carries), and waits until all are committed: decisions per second,
 * and this process's CPU time per decision (all its threads: the embedded database's too, not
 * a PostgreSQL server's).
 */
async function logDecisions(db: Db, ds: Decision[], keep?: (log: DecisionLog) => void): Promise<{ perSec: number; cpuUs: number }> {
  const log = new DecisionLog(db, { capacity: ds.length, batchSize: 500, flushMs: 20 });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const b = new DecisionChunkBuilder();
  const variants = new Map<string, ChunkVariant>();
  for (const d of ds) {
    let cv = variants.get(d.variant);
    if (cv === undefined) variants.set(d.variant, (cv = chunkVariant(d.model, d.variant, d.version, d.routeGen)));
    d.eventId = b.nextId();
    d.at = lastEventIdMs();
    b.add(d.eventId, d.at, cv, d.unitId, d.propensity, d.features as Float32Array | undefined);
    if (b.n === 256) check(log.offerChunk(b.take()!), 'a chunk was dropped below capacity');
  }
  if (b.n > 0) check(log.offerChunk(b.take()!), 'a chunk was dropped below capacity');
  while (log.stats.logged < ds.length) {
    check(log.stats.dropped === 0 && log.stats.failedBatches === 0, 'decisions dropped or a batch failed');
    await new Promise((r) => setTimeout(r, 2));
  }
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (keep) keep(log);
  else await log.close();
  return { perSec: ds.length / s, cpuUs: (cpu.user + cpu.system) / ds.length };
}

/** The database behind a switch: while down, every call fails as an unreachable database does. */
function switchable(db: Db): { db: Db; down: (d: boolean) => void } {
  let isDown = false;
  const gate = (): void => {
    if (isDown) throw unavailable(new Error('switched off by the benchmark'));
  };
  return {
    db: {
      kind: db.kind,
      query: async (sql, params) => (gate(), db.query(sql, params)),
      exec: async (sql) => (gate(), db.exec(sql)),
      transaction: async (fn) => (gate(), db.transaction(fn)),
      listen: (c, h) => db.listen(c, h),
      close: () => db.close(),
    },
    down: (d) => {
      isDown = d;
    },
  };
}

/**
 * Sends feedback for `ids` from `clients` concurrent clients in batches of `batch` (every tenth
 * batch twice when `repeats`); checks every acknowledged event is stored exactly once. Returns
 * events acknowledged per second (first sends only).
 */
async function sendFeedback(b: Backend, ids: string[], clients: number, batch: number, repeats: boolean, outage = false, written?: DecisionLog): Promise<{ perSec: number; replayPerSec?: number }> {
  const sw = switchable(b.db);
  // Without `written`, a log that never saw these decisions: each is looked up in the database
  // (feedback reaching another replica, or after a restart). With it, the log that wrote them
  // keeps them in memory (DecisionLog.find).
  const decisionLog = written ?? new DecisionLog(sw.db, { capacity: 10, batchSize: 10, flushMs: 10 });
  const intake = new FeedbackIntake({ db: sw.db, dataDir: path.join(b.dataDir, `fb-${randomBytes(4).toString('hex')}`), decisions: decisionLog, joinWindowMs: 86_400_000, batchSize: 1000, flushMs: 2, probeMinMs: 10, probeMaxMs: 20 });
  await intake.start();
  sw.down(outage);
  const acked = new Set<string>();
  let next = 0;
  let other = 0;
  const client = async () => {
    while (next < ids.length) {
      const from = next;
      next = Math.min(ids.length, next + batch);
      const items: FeedbackInput[] = ids.slice(from, next).map((eventId, i) => ({ eventId, reward: i % 3 }));
      const sends = repeats && (from / batch) % 10 === 0 ? 2 : 1;
      for (let k = 0; k < sends; k++) {
        for (const o of await intake.submit(items)) {
          if ('status' in o) {
            if (o.status === 'accepted') check(!acked.has(o.event_id), `${o.event_id} accepted twice`);
            acked.add(o.event_id);
          } else other++;
        }
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  const s = (performance.now() - t0) / 1000;
  let replayPerSec: number | undefined;
  if (outage) {
    check(intake.stats.localMode && intake.stats.replayPending === ids.length, 'every event went to the local log');
    const r0 = performance.now();
    sw.down(false);
    while (intake.stats.replayPending > 0 || intake.stats.localLogBytes > 0) await new Promise((r) => setTimeout(r, 2));
    replayPerSec = ids.length / ((performance.now() - r0) / 1000);
  }
  await intake.close();
  await decisionLog.close();
  check(other === 0, `${other} feedback events refused`);
  check(acked.size === ids.length, `acknowledged ${acked.size} of ${ids.length}`);
  const rows = await b.db.query<{ n: number; joined: number }>(
    'SELECT count(*)::int AS n, count(*) FILTER (WHERE f.joined)::int AS joined FROM feedback_events f WHERE f.event_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))',
    [JSON.stringify(ids)],
  );
  check(rows[0]!.n === ids.length, `stored ${rows[0]!.n} rows for ${ids.length} acknowledged events (lost or duplicated)`);
  check(rows[0]!.joined === ids.length, 'every stored event joined to its decision');
  return { perSec: ids.length / s, replayPerSec };
}

export async function runFeedback(opts: { quick?: boolean } = {}): Promise<void> {
  const quick = opts.quick ?? process.argv.includes('--quick');
  const url = process.argv.find((a) => a.startsWith('--database-url='))?.slice('--database-url='.length) ?? process.env.SLUICE_TEST_DATABASE_URL;
  const rows: Array<Array<string | number>> = [];
  const backends: Array<() => Promise<Backend>> = [pglite];
  if (url) backends.push(() => postgres(url));
  else console.log('feedback: PostgreSQL skipped (set SLUICE_TEST_DATABASE_URL or --database-url=)');
  for (const open of backends) {
    const b = await open();
    try {
      const n = quick ? 10_000 : b.name === 'PGlite' ? 50_000 : 100_000;
      // Correctness first: a small concurrent run with repeats.
      const small = decisions(5_000, 0);
      await logDecisions(b.db, small);
      await sendFeedback(b, small.map((d) => d.eventId), 16, 100, true);
      const smallOut = decisions(5_000, 0);
      await logDecisions(b.db, smallOut);
      await sendFeedback(b, smallOut.map((d) => d.eventId), 16, 100, true, true);
      console.log(`feedback (${b.name}): correctness OK (5,000 events, a tenth of the batches sent twice: each stored once, joined; again through the local log and its replay)`);
      const plain = decisions(n, 0);
      const logPlain = await logDecisions(b.db, plain);
      const withFeatures = decisions(Math.min(n, 20_000), 100);
      const logFeatures = await logDecisions(b.db, withFeatures);
      const online = await sendFeedback(b, plain.map((d) => d.eventId).slice(0, n / 2), 32, 100, false);
      const outage = await sendFeedback(b, plain.map((d) => d.eventId).slice(n / 2), 32, 100, false, true);
      let log: DecisionLog | undefined;
      const fresh = decisions(n / 2, 0);
      await logDecisions(b.db, fresh, (l) => (log = l));
      const inMemory = await sendFeedback(b, fresh.map((d) => d.eventId), 32, 100, false, false, log);
      rows.push([b.name, Math.round(logPlain.perSec), Math.round(logFeatures.perSec), logPlain.cpuUs.toFixed(1), logFeatures.cpuUs.toFixed(1), Math.round(online.perSec), Math.round(inMemory.perSec), Math.round(outage.perSec), Math.round(outage.replayPerSec!), n / 2]);
    } finally {
      await b.close();
    }
  }
  table('Decisions and feedback (src/learn), group commit', ['database', 'decisions/s', 'decisions/s (100 features)', 'CPU µs/decision (this process)', 'CPU µs/decision (100 features)', 'feedback/s (batches of 100, committed; decisions read from the database)', 'feedback/s (same, decisions in the writing log\'s memory)', 'feedback/s (database away: local log, fsynced)', 'replay/s', 'events per feedback run'], rows);
}
