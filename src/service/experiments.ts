/**
 * The experiment operations of the admin service (issue #14): create, list, show, results,
 * stop, promote, change weights and upload CUPED covariates. Like routes, an experiment's
 * versions are loaded (verified, warmed) before its route is stored, and the route is put in
 * force here at once; other replicas follow the registry.
 *
 * Answers are the API's JSON. `results` is a fresh look (read-only: the analysis loop alone
 * keeps sequential state), so it may be ahead of the loop's last look by up to one interval.
 */
import { SluiceError } from '../errors.js';
import type { Db } from '../registry/db.js';
import { isValidUnitId } from '../learn/event-id.js';
import { objectWith, optionalText, own } from '../strict-json.js';
import { rebalanceRoute, type RouteSpec } from '../routing/route.js';
import { analysis } from '../control/experiments/loop.js';
import { experimentJson, parseExperiment } from '../control/experiments/spec.js';
import {
  changeWeights, createExperiment, getExperiment, listExperiments, promoteExperiment, stopExperiment, storeCovariates,
  type ExperimentRecord, type ExperimentStatus, type Promotion,
} from '../control/experiments/store.js';
import type { RouteEngine } from './admin.js';

export interface ExperimentsService {
  createExperiment(body: unknown, actor: string): Promise<object>;
  listExperiments(status?: string): Promise<object[]>;
  showExperiment(name: string): Promise<object>;
  experimentResults(name: string): Promise<object>;
  stopExperiment(name: string, body: unknown, actor: string): Promise<object>;
  promoteExperiment(name: string, body: unknown, actor: string): Promise<object>;
  experimentWeights(name: string, body: unknown, actor: string): Promise<object>;
  experimentCovariates(name: string, body: unknown): Promise<object>;
}

export const EXPERIMENT_OPERATIONS = [
  'createExperiment', 'listExperiments', 'showExperiment', 'experimentResults', 'stopExperiment', 'promoteExperiment',
  'experimentWeights', 'experimentCovariates',
] as const satisfies ReadonlyArray<keyof ExperimentsService>;

/** Covariates per upload at most (send more in several). */
export const MAX_COVARIATES = 100_000;

function invalid(message: string): SluiceError {
  return new SluiceError('EXPERIMENT_INVALID', message);
}

/** A request body with only `known` fields (absent: empty). */
function bodyWith(body: unknown, known: string[]): Record<string, unknown> {
  return body === undefined ? {} : objectWith(body, 'the request body', known, invalid);
}

function recordJson(e: ExperimentRecord): Record<string, unknown> {
  return {
    name: e.spec.name,
    model: e.spec.model,
    status: e.status,
    spec: experimentJson(e.spec),
    outcome: e.outcome,
    promoted_version: e.promotedVersion,
    created_by: e.createdBy,
    started_at: e.startedAt.toISOString(),
    stopped_at: e.stoppedAt?.toISOString() ?? null,
    analyzed_at: e.analyzedAt?.toISOString() ?? null,
  };
}

function promotionJson(p: Promotion): Record<string, unknown> {
  return {
    ...recordJson(p.record),
    promoted: { version: p.promoted.version, replaced_production: p.promoted.replacedProduction, changed: p.promoted.changed, audit_id: p.promoted.auditId },
    archived: p.archived.map((a) => ({ version: a.version, audit_id: a.auditId })),
  };
}

/** New weights for the route in force: hash routes keep every unit they can (ranges). */
function reweighted(current: RouteSpec, weights: number[], model: string): RouteSpec {
  if (current.assignment === 'hash') return rebalanceRoute(current, weights, model);
  const sum = weights.reduce((a, b) => a + b, 0);
  return Object.freeze({ ...current, variants: Object.freeze(current.variants.map((v, i) => Object.freeze({ name: v.name, version: v.version, weight: weights[i]! / sum }))) as RouteSpec['variants'] });
}

export function experimentsService(db: Db, engine: RouteEngine): ExperimentsService {
  const clearHere = async (model: string) => {
    if (engine.hasModel(model) && engine.liveVersions(model).route) await engine.setRoute(model, undefined);
  };
  return {
    async createExperiment(body, actor) {
      const spec = parseExperiment(body);
      // The statistics load here, once per process (0.1-0.3 s of this thread), so that the
      // experiment's first look, a results call or a promotion by hand, does not pay for them.
      await analysis();
      await engine.prepareVersions(spec.model, spec.variants.map((v) => v.version));
      const { record, route } = await createExperiment(db, spec, actor);
      await engine.setRoute(spec.model, route.route ?? undefined, route.generation);
      return { ...recordJson(record), route_generation: route.generation, audit_id: route.auditId };
    },
    async listExperiments(status) {
      if (status !== undefined && status !== 'running' && status !== 'stopped') throw invalid('status must be "running" or "stopped"');
      return (await listExperiments(db, status as ExperimentStatus | undefined)).map((e) => {
        const { spec: _spec, ...rest } = recordJson(e);
        return { ...rest, variants: e.spec.variants.map((v) => ({ name: v.name, version: v.version })), decision: (e.lastResults?.decision as object | undefined) ?? null };
      });
    },
    showExperiment: async (name) => {
      const e = await getExperiment(db, name);
      return { ...recordJson(e), last_results: e.lastResults };
    },
    experimentResults: async (name) => (await (await analysis()).look(db, await getExperiment(db, name))).results,
    async stopExperiment(name, body, actor) {
      const o = bodyWith(body, ['reason']);
      const reason = optionalText(o, 'reason', invalid) ?? 'stopped by hand';
      const { record, route } = await stopExperiment(db, name, { action: 'manual', reason }, actor);
      if (route?.changed) await clearHere(record.spec.model);
      return recordJson(record);
    },
    async promoteExperiment(name, body, actor) {
      const o = bodyWith(body, ['variant', 'reason']);
      const e = await getExperiment(db, name);
      const l = await (await analysis()).look(db, e);
      const asked = optionalText(o, 'variant', invalid);
      // Without a variant: the winner the experiment stopped for, or the one this look finds.
      const variant = asked ?? (e.outcome?.action === 'winner' ? e.outcome.variant : undefined) ?? (l.decision.action === 'winner' ? l.decision.variant : undefined);
      if (variant === undefined) throw new SluiceError('EXPERIMENT_STOPPED', `experiment ${name} has no winner (${l.decision.reason}): name the variant to promote`);
      const reason = optionalText(o, 'reason', invalid);
      const outcome = { action: 'manual' as const, variant, reason: reason ?? `${variant} promoted by hand` };
      const p = await promoteExperiment(db, name, variant, l.results, actor, outcome);
      if (p.route?.changed) await clearHere(p.record.spec.model);
      return promotionJson(p);
    },
    async experimentWeights(name, body, actor) {
      const o = bodyWith(body, ['weights', 'reason']);
      const w = own(o, 'weights');
      if (typeof w !== 'object' || w === null || Array.isArray(w)) throw invalid('weights must be an object of variant name -> weight > 0, naming every variant');
      const e = await getExperiment(db, name);
      if (e.spec.route.assignment === 'bandit') throw invalid('a bandit experiment\'s weights are the bandit\'s: they cannot be set');
      const given = w as Record<string, unknown>;
      for (const k of Object.keys(given)) if (!e.spec.variants.some((v) => v.name === k)) throw invalid(`weights names ${JSON.stringify(k.slice(0, 64))}, not a variant of ${name}`);
      const weights = e.spec.variants.map((v) => {
        const x = own(given, v.name);
        if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0) throw invalid(`weights.${v.name} must be a number > 0 (every variant keeps a share)`);
        return x;
      });
      const change = await changeWeights(db, name, (current) => {
        try {
          return reweighted(current, weights, e.spec.model);
        } catch (err) {
          if (err instanceof SluiceError && err.code === 'ROUTE_INVALID') throw invalid(err.message);
          throw err;
        }
      }, actor, optionalText(o, 'reason', invalid));
      if (change.route) await engine.setRoute(e.spec.model, change.route, change.generation);
      return { experiment: name, route_generation: change.generation, changed: change.changed, audit_id: change.auditId, weights: Object.fromEntries(e.spec.variants.map((v, i) => [v.name, change.route?.variants[i]?.weight ?? weights[i]])) };
    },
    async experimentCovariates(name, body) {
      const o = bodyWith(body, ['covariates']);
      const c = own(o, 'covariates');
      if (!Array.isArray(c) || c.length === 0 || c.length > MAX_COVARIATES) throw invalid(`covariates must be a list of 1 to ${MAX_COVARIATES} {"unit_id", "value"}`);
      const values: Array<[string, number]> = c.map((item, i) => {
        if (typeof item !== 'object' || item === null || Array.isArray(item)) throw invalid(`covariates[${i}] must be {"unit_id", "value"}`);
        const { unit_id: unit, value, ...rest } = item as Record<string, unknown>;
        if (Object.keys(rest).length > 0) throw invalid(`covariates[${i}] has an unknown field ${JSON.stringify(Object.keys(rest)[0]!.slice(0, 64))}`);
        if (!isValidUnitId(unit)) throw invalid(`covariates[${i}].unit_id must be a unit id as decisions carry them (1 to 128 printable characters)`);
        if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`covariates[${i}].value must be a finite number`);
        return [unit, value];
      });
      const e = await getExperiment(db, name);
      const stored = await storeCovariates(db, e.id, values);
      return { experiment: name, received: values.length, stored, unknown_units: values.length - stored };
    },
  };
}
