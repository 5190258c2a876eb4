/**
 * The deployment loop: every `intervalMs`, for each deployment in progress, whichever replica
 * takes its PostgreSQL advisory lock (transaction-scoped, like the experiment loop's) reads the
 * figures, asks the controller (controller.ts) what comes next, and applies it in the same
 * transaction (store.ts applyIn): the route, the registry promotion, the row and its event. The
 * state lives in the database, so a replica that takes over after a restart or a crash carries
 * on from the step in force, judging from that step's start (or the last window_s).
 *
 * The figures are this replica's (its windows of the two versions, its shadow report): each
 * replica sees a share of the model's traffic, the same mix as the whole; with several replicas
 * the judge works on fewer requests per look, never on different traffic.
 */
import { Periodic } from '../periodic.js';
import { errorFields, log } from '../../log.js';
import type { Db } from '../../registry/db.js';
import type { RouteSpec } from '../../routing/route.js';
import type { LookFigures, ShadowFigures } from './controller.js';
import type { VersionWindow } from './judge.js';
import { applyIn, getDeployment, listDeployments, saveVerdict, type DeploymentRecord } from './store.js';

/**
 * The judge's statistics (@stdlib distributions) load on the first look, not at start: a server
 * that never deploys does not hold them (test/integration/footprint.test.ts).
 */
const controller = () => import('./controller.js');

/** Arbitrary constant naming "deployment control" among advisory locks (two-key form: this, deployment id). */
export const DEPLOYMENT_LOCK = 0x51_1c_e0_15;

export interface DeploymentLoopOptions {
  db: Db;
  intervalMs: number;
  /** This replica's figures of `version` since `sinceMs` (ms since the epoch). */
  window: (model: string, version: string, sinceMs: number) => Promise<VersionWindow>;
  /** This replica's sampled predictions of `version` since `sinceMs` (the judge's drift check; absent: not judged). */
  predictions?: (model: string, version: string, sinceMs: number) => Promise<ArrayLike<number>>;
  /** This replica's shadow figures of `version` (the engine's shadow report). */
  shadow: (model: string, version: string) => Promise<ShadowFigures | undefined>;
  /** Puts the model's route in force here at once (undefined: cleared); others follow the registry. */
  routeChanged: (model: string, route: RouteSpec | undefined, generation: number) => Promise<void>;
}

export interface TickOutcome {
  deployment: number;
  action: 'skipped' | 'wait' | 'advance' | 'promote' | 'rollback';
}

export class DeploymentLoop {
  private readonly periodic: Periodic;

  constructor(private readonly o: DeploymentLoopOptions) {
    this.periodic = new Periodic(o.intervalMs, () => this.tick(), 'deployments: a look failed (retried next interval)');
  }

  start(): void {
    this.periodic.start();
  }

  async close(): Promise<void> {
    await this.periodic.close();
  }

  async tick(now = Date.now()): Promise<TickOutcome[]> {
    const out: TickOutcome[] = [];
    for (const d of await listDeployments(this.o.db, true)) {
      if (d.status !== 'running') continue;
      try {
        out.push(await this.lookAt(d, now));
      } catch (e) {
        log.warn('deployments: look failed', { deployment: d.id, ...errorFields(e) });
      }
    }
    return out;
  }

  private async figures(d: DeploymentRecord, now: number): Promise<LookFigures> {
    const model = d.spec.model;
    if (d.spec.kind === 'shadow') return { shadow: await this.o.shadow(model, d.candidate) };
    const since = Math.max(d.stepStartedAt.getTime(), now - d.spec.windowS * 1000);
    const predictions = async (version: string) => (this.o.predictions ? { predictions: await this.o.predictions(model, version, since) } : {});
    const candidate = { ...(await this.o.window(model, d.candidate, since)), ...(await predictions(d.candidate)) };
    // Blue-green: the stable version has no traffic after the switch; its baseline stands in
    // (without predictions: the drift check does not judge a blue-green bake).
    const stable = d.spec.kind === 'blue-green' ? d.baseline ?? undefined : { ...(await this.o.window(model, d.stable, since)), ...(await predictions(d.stable)) };
    return { candidate, ...(stable ? { stable } : {}) };
  }

  private async lookAt(seen: DeploymentRecord, now: number): Promise<TickOutcome> {
    // The figures are read before the transaction: they are this process's, not the database's.
    const figures = await this.figures(seen, now);
    const done = await this.o.db.transaction(async (tx) => {
      const [got] = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::int, $2::int) AS locked', [DEPLOYMENT_LOCK, seen.id]);
      if (!got?.locked) return { action: 'skipped' as const };
      const d = await getDeployment(tx, seen.id, true);
      // Another replica moved it on since this one read it: its figures are for another step.
      if (d.status !== 'running' || d.step !== seen.step || d.stepStartedAt.getTime() !== seen.stepStartedAt.getTime()) return { action: 'skipped' as const };
      const n = (await controller()).next(d, now, figures);
      if (!n.transition) {
        await saveVerdict(tx, d.id, n.verdict);
        return { action: 'wait' as const };
      }
      log.info(`deployments: ${n.transition.action}`, { deployment: d.id, model: d.spec.model, candidate: d.candidate, reason: n.transition.reason });
      const applied = await applyIn(tx, d, n.transition);
      return { action: n.transition.action as TickOutcome['action'], route: applied.route };
    });
    if ('route' in done && done.route?.changed) await this.o.routeChanged(seen.spec.model, done.route.route ?? undefined, done.route.generation);
    return { deployment: seen.id, action: done.action };
  }
}
