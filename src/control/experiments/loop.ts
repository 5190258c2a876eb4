/**
 * The experiment loop: every `intervalMs`, on every replica,
 *   1. this replica reports its serving figures of the running experiments (guardrails);
 *   2. for each running experiment, whichever replica takes the experiment's PostgreSQL advisory
 *      lock (transaction-scoped: pg_try_advisory_xact_lock) looks at it, keeps the look (its
 *      sequential state and results), and acts on the decision in the same transaction: a
 *      winner, futility or harm stops it (its route cleared: production serves again), and a
 *      winner of an experiment with auto_promote becomes production (audited, the analysis on the
 *      audit row), the other versions archived. The other replicas skip it this round and follow
 *      through the registry (routes and production changes are NOTIFYed).
 * Holding the lock only inside the transaction means a replica that dies mid-look releases it
 * with its connection, and no replica is "the leader" for longer than one look.
 */
import { Periodic } from '../periodic.js';
import { errorFields, log } from '../../log.js';
import type { Db } from '../../registry/db.js';
import type { Metrics } from '../../metrics/version-metrics.js';
import { ServingReporter } from './serving.js';
import { getExperiment, listExperiments, promoteIn, saveAnalysis, stopIn } from './store.js';

/**
 * The statistics (src/analyze and the @stdlib distributions, ~10 MB) load on the first look: a
 * server that never runs an experiment does not hold them (test/integration/footprint.test.ts).
 */
export const analysis = () => import('./analysis.js');

/** Arbitrary constant naming "experiment analysis" among advisory locks (two-key form: this, experiment id). */
export const EXPERIMENT_LOCK = 0x51_1c_e0_14;

export interface ExperimentLoopOptions {
  db: Db;
  intervalMs: number;
  /** Names this process among replicas (its serving figures' row). */
  replica: string;
  /** The engine's whole-process metrics. */
  metrics: () => Promise<Metrics>;
  /** Called after a stop cleared a model's route (this replica drops it at once). */
  routeCleared?: (model: string) => Promise<void>;
  /** Who the audit log names for the loop's changes. */
  actor?: string;
}

/** What one look did to an experiment. */
export interface LookOutcome {
  experiment: string;
  action: 'skipped' | 'continue' | 'winner' | 'futility' | 'harm';
  promoted?: string;
}

export class ExperimentLoop {
  private readonly periodic: Periodic;
  private readonly reporter: ServingReporter;

  constructor(private readonly o: ExperimentLoopOptions) {
    this.periodic = new Periodic(o.intervalMs, () => this.tick(), 'experiments: a look failed (retried next interval)');
    this.reporter = new ServingReporter(o.replica);
  }

  start(): void {
    this.periodic.start();
  }

  async close(): Promise<void> {
    await this.periodic.close();
  }

  /** One round: report, then look at every running experiment this replica gets the lock of. */
  async tick(now = Date.now()): Promise<LookOutcome[]> {
    const running = await listExperiments(this.o.db, 'running');
    if (running.length === 0) return [];
    try {
      await this.reporter.report(this.o.db, await this.o.metrics(), running);
    } catch (e) {
      log.warn('experiments: serving figures not reported', errorFields(e));
    }
    const out: LookOutcome[] = [];
    for (const e of running) {
      try {
        out.push(await this.lookAt(e.spec.name, e.id, now));
      } catch (err) {
        log.warn('experiments: look failed', { experiment: e.spec.name, ...errorFields(err) });
      }
    }
    return out;
  }

  private async lookAt(name: string, id: number, now: number): Promise<LookOutcome> {
    const actor = this.o.actor ?? 'sluice-experiments';
    const done = await this.o.db.transaction(async (tx): Promise<LookOutcome & { cleared?: string }> => {
      const [got] = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::int, $2::int) AS locked', [EXPERIMENT_LOCK, id]);
      if (!got?.locked) return { experiment: name, action: 'skipped' };
      const e = await getExperiment(tx, name, true);
      if (e.status !== 'running') return { experiment: name, action: 'skipped' };
      const l = await (await analysis()).look(tx, e, now);
      await saveAnalysis(tx, e.id, l.state, l.results);
      const d = l.decision;
      if (d.action === 'continue') return { experiment: name, action: 'continue' };
      const outcome = { action: d.action, ...(d.variant !== undefined ? { variant: d.variant } : {}), reason: d.reason };
      log.info('experiments: stopping', { experiment: name, ...outcome });
      if (d.action === 'winner' && e.spec.autoPromote) {
        const p = await promoteIn(tx, e, d.variant!, l.results, actor, outcome);
        return { experiment: name, action: d.action, promoted: p.promoted.version, ...(p.route?.changed ? { cleared: e.spec.model } : {}) };
      }
      const cleared = await stopIn(tx, e, outcome, actor);
      return { experiment: name, action: d.action, ...(cleared?.changed ? { cleared: e.spec.model } : {}) };
    });
    const { cleared, ...result } = done;
    if (cleared !== undefined) await this.o.routeCleared?.(cleared);
    return result;
  }
}
