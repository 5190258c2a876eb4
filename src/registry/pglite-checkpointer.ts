/**
 * PostgreSQL's checkpointer, for the embedded database. PGlite runs PostgreSQL as one
 * single-user backend: there is no checkpointer process, and a standalone backend never asks
 * for a checkpoint however much WAL it writes (XLogWrite requests one only under a postmaster).
 * Without one, no WAL segment is ever removed or recycled: 560 MB of `pg_wal` after a minute of
 * decisions logged with 100 features at 19,000 a second (2026-12-07), growing for as long as the
 * process runs; a restart after a crash replays all of it; and every new segment is a new file,
 * zero-filled. This runs `CHECKPOINT` as the checkpointer would: once the WAL written since the
 * last checkpoint's redo point reaches `walBytes` (PostgreSQL's max_wal_size, scaled to a
 * registry and its decision log), or `timeoutMs` has passed with any written (its
 * checkpoint_timeout). After one, PostgreSQL recycles the old segments as the next ones
 * (renamed, not written again) and removes the rest, so `pg_wal` stays near min_wal_size plus
 * about one checkpoint's distance (pglite-settings.ts).
 *
 * A checkpoint writes the dirty buffers (at most shared_buffers, 4 MB) and syncs the files
 * written since the last one: 40-100 ms here at 19,000 decisions a second, during which other
 * statements wait (PGlite runs one at a time; the decision log's buffer holds what arrives).
 * The check itself is one short query every `checkMs`, run between statements.
 */
import { log, errorFields } from '../log.js';
import { family } from '../metrics/families.js';
import type { Queryable } from './db.js';

export interface CheckpointOptions {
  /** WAL bytes since the last checkpoint's redo point that start one. */
  walBytes: number;
  /** Time since the last checkpoint after which any WAL written starts one. */
  timeoutMs: number;
  /** How often the WAL written is looked at. */
  checkMs: number;
}

export const CHECKPOINT_DEFAULTS: CheckpointOptions = { walBytes: 64 * 1024 * 1024, timeoutMs: 5 * 60_000, checkMs: 1_000 };

/** What the checkpointer has done, for /metrics (checkpointMetricLines). */
export interface CheckpointStats {
  /** Checkpoints taken. */
  count: number;
  /** Seconds spent in them, in all. */
  seconds: number;
  /** Checks or checkpoints that failed (a full disk; the next check tries again). */
  failures: number;
  /** WAL written since the last checkpoint's redo point, at the last check (bytes). */
  walSinceCheckpoint: number;
}

/** The figures of a checkpointer that has not checked yet. */
export function noCheckpoints(): CheckpointStats {
  return { count: 0, seconds: 0, failures: 0, walSinceCheckpoint: 0 };
}

export interface Checkpointer {
  /** Checkpoints run so far. */
  readonly count: number;
  stats(): CheckpointStats;
  /** Stops the checks; waits for a checkpoint under way. */
  stop(): Promise<void>;
}

/**
 * Starts checking `db` (an embedded database's one connection) every `checkMs`; a timer that
 * never keeps the process alive. `onStats` is called after every check with the figures so far
 * (the database's thread posts them to the process, pglite-thread.ts).
 */
export function startCheckpointer(db: Queryable, o: CheckpointOptions = CHECKPOINT_DEFAULTS, onStats?: (s: CheckpointStats) => void): Checkpointer {
  const stats = noCheckpoints();
  let lastAt = performance.now();
  /** Where WAL insertion stood right after this checkpointer's last checkpoint (its own record included). */
  let lastLsn: string | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let warned = false;
  const check = async (): Promise<void> => {
    // WAL inserted since the redo point of the last checkpoint (at first, the one the database
    // was left with), and whether any was written since this checkpointer's last one: an idle
    // database is not checkpointed again and again for its own checkpoint records.
    const [row] = await db.query<{ since: string; at: string }>(
      'SELECT (pg_current_wal_insert_lsn() - redo_lsn)::text AS since, pg_current_wal_insert_lsn()::text AS at FROM pg_control_checkpoint()');
    if (row === undefined) return;
    const written = row.at !== lastLsn;
    stats.walSinceCheckpoint = Number(row.since);
    if (stats.walSinceCheckpoint >= o.walBytes || (written && performance.now() - lastAt >= o.timeoutMs)) {
      const t0 = performance.now();
      await db.query('CHECKPOINT');
      const [after] = await db.query<{ at: string; since: string }>(
        'SELECT pg_current_wal_insert_lsn()::text AS at, (pg_current_wal_insert_lsn() - redo_lsn)::text AS since FROM pg_control_checkpoint()');
      lastLsn = after?.at;
      stats.walSinceCheckpoint = Number(after?.since ?? 0);
      stats.count++;
      lastAt = performance.now();
      stats.seconds += (lastAt - t0) / 1000;
      warned = false;
    }
  };
  const timer = setInterval(() => {
    if (running !== undefined || stopped) return;
    running = check().catch((e: unknown) => {
      // A closed database (shutting down) or a failed checkpoint (a full disk): serving goes on;
      // the next check tries again. Said once until one succeeds.
      if (stopped) return;
      stats.failures++;
      if (warned) return;
      warned = true;
      log.warn('registry: embedded database checkpoint failed; retrying', errorFields(e));
    }).finally(() => {
      running = undefined;
      if (!stopped) onStats?.({ ...stats });
    });
  }, o.checkMs);
  timer.unref();
  return {
    get count() {
      return stats.count;
    },
    stats: () => ({ ...stats }),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

/** The checkpointer's figures as /metrics lines. */
export function checkpointMetricLines(s: CheckpointStats): string[] {
  const out: string[] = [];
  family(out, 'sluice_embedded_db_checkpoints_total', 'counter', 'Checkpoints of the embedded database (PGlite takes none by itself).', [[{}, s.count]]);
  family(out, 'sluice_embedded_db_checkpoint_seconds_total', 'counter', 'Time the embedded database spent in checkpoints (other statements wait meanwhile).', [[{}, s.seconds]]);
  family(out, 'sluice_embedded_db_checkpoint_failures_total', 'counter', 'Failed checkpoint checks or checkpoints of the embedded database (retried at the next check).', [[{}, s.failures]]);
  family(out, 'sluice_embedded_db_wal_since_checkpoint_bytes', 'gauge', 'WAL written since the embedded database\'s last checkpoint, at the last check: pg_wal holds about this plus min_wal_size.', [[{}, s.walSinceCheckpoint]]);
  return out;
}
