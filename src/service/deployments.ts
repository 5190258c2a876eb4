/**
 * The deployment operations of the admin service (issue #15): create (canary, blue-green,
 * shadow), list, show (with its events), pause, resume, abort and promote. Like routes and
 * experiments, the versions are loaded (verified, warmed) before the first route is stored, and
 * each route change is put in force here at once; other replicas follow the registry. The
 * controller (src/control/deployments/loop.ts) moves running deployments on by itself; these
 * are the operator's hands on it, each an audited event.
 */
import { SluiceError } from '../errors.js';
import type { Db } from '../registry/db.js';
import { objectWith, optionalText } from '../strict-json.js';
import type { VersionWindow } from '../control/deployments/judge.js';
import { deploymentJson, parseDeployment } from '../control/deployments/spec.js';
import {
  apply, createDeployment, deploymentEvents, getDeployment, listDeployments, shareAt,
  type Applied, type DeploymentRecord, type Transition,
} from '../control/deployments/store.js';
import type { RouteEngine } from './admin.js';

export interface DeploymentsService {
  createDeployment(body: unknown, actor: string): Promise<object>;
  listDeployments(state?: string): Promise<object[]>;
  showDeployment(id: string): Promise<object>;
  pauseDeployment(id: string, body: unknown, actor: string): Promise<object>;
  resumeDeployment(id: string, body: unknown, actor: string): Promise<object>;
  abortDeployment(id: string, body: unknown, actor: string): Promise<object>;
  promoteDeployment(id: string, body: unknown, actor: string): Promise<object>;
}

export const DEPLOYMENT_OPERATIONS = [
  'createDeployment', 'listDeployments', 'showDeployment', 'pauseDeployment', 'resumeDeployment', 'abortDeployment', 'promoteDeployment',
] as const satisfies ReadonlyArray<keyof DeploymentsService>;

/** A version's window of this replica's traffic since a time (src/control/deployments/windows.ts). */
export type WindowRead = (model: string, version: string, sinceMs: number) => Promise<VersionWindow>;

function invalid(message: string): SluiceError {
  return new SluiceError('DEPLOYMENT_INVALID', message);
}

function idOf(v: string): number {
  const n = Number(v);
  if (!/^[0-9]{1,15}$/.test(v) || !Number.isSafeInteger(n)) throw invalid('a deployment id is a positive integer');
  return n;
}

function reasonOf(body: unknown, dflt: string): string {
  const o = body === undefined ? {} : objectWith(body, 'the request body', ['reason'], invalid);
  return optionalText(o, 'reason', invalid) ?? dflt;
}

export function deploymentRecordJson(d: DeploymentRecord): Record<string, unknown> {
  return {
    id: d.id, model: d.spec.model, kind: d.spec.kind, stable: d.stable, candidate: d.candidate, status: d.status,
    step: d.step, share: currentShare(d), step_started_at: d.stepStartedAt.toISOString(),
    spec: deploymentJson(d.spec), last_verdict: d.lastVerdict, outcome: d.outcome,
    created_by: d.createdBy, created_at: d.createdAt.toISOString(), finished_at: d.finishedAt?.toISOString() ?? null,
  };
}

/** The candidate's traffic share now (0 once finished, unless promoted: then all of it). */
function currentShare(d: DeploymentRecord): number {
  if (d.status === 'promoted') return 1;
  if (d.status === 'rolled_back' || d.status === 'aborted') return 0;
  return shareAt(d, d.step);
}

export function deploymentsService(db: Db, engine: RouteEngine, window?: WindowRead): DeploymentsService {
  const follow = async (model: string, a: Applied) => {
    if (!a.route?.changed) return;
    if (a.route.route) await engine.setRoute(model, a.route.route, a.route.generation);
    else if (engine.hasModel(model) && engine.liveVersions(model).route) await engine.setRoute(model, undefined);
  };
  const act = async (id: string, t: Omit<Transition, 'actor'>, actor: string, check?: (d: DeploymentRecord) => void) => {
    const a = await apply(db, idOf(id), { ...t, actor }, check);
    await follow(a.record.spec.model, a);
    return { ...deploymentRecordJson(a.record), ...(a.promoted ? { promoted: { version: a.promoted.version, replaced_production: a.promoted.replacedProduction, audit_id: a.promoted.auditId } } : {}) };
  };
  return {
    async createDeployment(body, actor) {
      const spec = parseDeployment(body);
      const versions = [spec.candidate, ...(spec.stable !== undefined ? [spec.stable] : [])];
      await engine.prepareVersions(spec.model, versions);
      // Blue-green compares the candidate with the stable version's figures from before the switch.
      const baseline = window ? (stable: string) => window(spec.model, stable, Date.now() - spec.windowS * 1000) : undefined;
      const { record, route } = await createDeployment(db, spec, actor, baseline);
      // The stable version serves the rest of a canary's traffic: loaded too (production is already).
      if (!versions.includes(record.stable)) await engine.prepareVersions(spec.model, [record.stable]);
      await engine.setRoute(spec.model, route.route ?? undefined, route.generation);
      return { ...deploymentRecordJson(record), route_generation: route.generation, audit_id: route.auditId };
    },
    async listDeployments(state) {
      if (state !== undefined && state !== 'active' && state !== 'finished') throw invalid('state must be "active" or "finished"');
      return (await listDeployments(db, state === undefined ? undefined : state === 'active')).map(deploymentRecordJson);
    },
    async showDeployment(id) {
      const d = await getDeployment(db, idOf(id));
      const events = (await deploymentEvents(db, d.id)).map((e) => ({ ...e, at: e.at.toISOString() }));
      return { ...deploymentRecordJson(d), events };
    },
    pauseDeployment: (id, body, actor) => act(id, { action: 'pause', to: 'paused', reason: reasonOf(body, 'paused by hand') }, actor, (d) => {
      if (d.status !== 'running') throw new SluiceError('DEPLOYMENT_FINISHED', `deployment ${d.id} is ${d.status.replace('_', ' ')}, not running`);
    }),
    resumeDeployment: (id, body, actor) => act(id, { action: 'resume', to: 'running', reason: reasonOf(body, 'resumed by hand') }, actor, (d) => {
      if (d.status !== 'paused') throw new SluiceError('DEPLOYMENT_FINISHED', `deployment ${d.id} is ${d.status.replace('_', ' ')}, not paused`);
    }),
    abortDeployment: (id, body, actor) => act(id, { action: 'abort', to: 'aborted', reason: reasonOf(body, 'aborted by hand') }, actor),
    promoteDeployment: (id, body, actor) => act(id, { action: 'promote', to: 'promoted', reason: reasonOf(body, 'promoted by hand') }, actor),
  };
}
