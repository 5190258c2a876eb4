/**
 * An experiment's definition (issue #14) in its API form:
 *
 *   {"name": "ranker-ab", "model": "ranker",
 *    "variants": [{"name": "control", "version": "1", "weight": 0.5},
 *                 {"name": "new", "version": "2", "weight": 0.5}],
 *    "control"?: "control",                      (default: the first variant)
 *    "assignment"?: "hash" | "random" | "bandit", (default hash: sticky per unit id)
 *    "salt"?: "...",                              (default "experiment:<name>": fresh buckets)
 *    "bandit"?: {...},                            (the route's bandit settings, assignment bandit)
 *    "log_features"?: false,
 *    "primary": {"name": "reward", "kind": "mean"},
 *    "secondary"?: [{"name": "converted", "kind": "rate"}],
 *    "guardrails"?: [{"name": "errors", "kind": "error_rate"}, {"name": "latency", "kind": "latency"}],
 *    "alpha"?: 0.05, "min_units"?: 100, "min_runtime_s"?: 0, "auto_promote"?: false,
 *    "max_units"?: null,                          (per variant: the planned horizon)
 *    "mde"?: {"kind": "absolute" | "relative", "value": 0.01}}  (minimum effect worth finding)
 *
 * min_units and min_runtime_s hold back every stop (winner, futility, harm). max_units also tunes
 * the always-valid test: its interval is tightest near the planned total (max_units x variants;
 * 5,000 units without it). `mde` lets the experiment stop for futility once no treatment can
 * still beat the control by that much.
 *
 * Metric kinds, each computed per UNIT (the randomisation unit: the unit id under hash or bandit
 * assignment, the request under random assignment) and then averaged over units:
 *   mean        the mean of the unit's feedback rewards, over units with feedback;
 *   sum         the unit's total reward, over every exposed unit (0 without feedback);
 *   rate        the share of exposed units with a reward > 0 (conversion);
 *   error_rate  the share of the variant's requests that failed (serving; guardrails only);
 *   latency     the mean request latency in ms (serving; guardrails only).
 * A metric's `direction` says which way is better: "increase" (default for rewards) or
 * "decrease" (default for error_rate and latency).
 *
 * Every fault is EXPERIMENT_INVALID naming the field (a route fault keeps its message).
 */
import { SluiceError } from '../../errors.js';
import { checkName, invalidName, isValidName } from '../../names.js';
import { parseRoute, type RouteSpec } from '../../routing/route.js';
import { objectWith as strictObject, own } from '../../strict-json.js';

export const METRIC_KINDS = ['mean', 'sum', 'rate', 'error_rate', 'latency'] as const;
export type MetricKind = (typeof METRIC_KINDS)[number];
export const REWARD_KINDS: readonly MetricKind[] = ['mean', 'sum', 'rate'];
export const SERVING_KINDS: readonly MetricKind[] = ['error_rate', 'latency'];

export interface Metric {
  name: string;
  kind: MetricKind;
  direction: 'increase' | 'decrease';
}

export interface ExperimentVariant {
  name: string;
  version: string;
  weight: number;
}

export interface ExperimentSpec {
  name: string;
  model: string;
  variants: ExperimentVariant[];
  /** Index of the control in `variants`. */
  control: number;
  /** The route the experiment puts in force when it starts. */
  route: RouteSpec;
  primary: Metric;
  secondary: Metric[];
  guardrails: Metric[];
  alpha: number;
  minUnits: number;
  minRuntimeS: number;
  autoPromote: boolean;
  /** Units per variant the experiment plans for (the futility horizon), or null. */
  maxUnits: number | null;
  /** The smallest difference worth finding on the primary metric (futility), or null. */
  mde: { kind: 'absolute' | 'relative'; value: number } | null;
}

const FIELDS = ['name', 'model', 'variants', 'control', 'assignment', 'salt', 'bandit', 'log_features', 'primary', 'secondary', 'guardrails', 'alpha', 'min_units', 'min_runtime_s', 'auto_promote', 'max_units', 'mde'];
const METRIC_FIELDS = ['name', 'kind', 'direction'];
const MAX_METRICS = 16;

function invalid(message: string): SluiceError {
  return new SluiceError('EXPERIMENT_INVALID', message);
}

function objectWith(v: unknown, what: string, known: string[]): Record<string, unknown> {
  return strictObject(v, what, known, invalid);
}

function numberIn(v: unknown, what: string, dflt: number, ok: (n: number) => boolean, rule: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw invalid(`${what} must be ${rule}`);
  return v;
}

function parseMetric(v: unknown, what: string, serving: boolean): Metric {
  const o = objectWith(v, what, METRIC_FIELDS);
  const name = own(o, 'name');
  if (!isValidName(name)) throw invalid(invalidName(`${what}.name`).message);
  const kind = own(o, 'kind');
  const kinds = serving ? METRIC_KINDS : REWARD_KINDS;
  if (typeof kind !== 'string' || !(kinds as readonly string[]).includes(kind)) {
    throw invalid(`${what}.kind must be one of ${kinds.map((k) => JSON.stringify(k)).join(', ')}${serving ? '' : ' (error_rate and latency are guardrails)'}`);
  }
  const direction = own(o, 'direction') ?? (SERVING_KINDS.includes(kind as MetricKind) ? 'decrease' : 'increase');
  if (direction !== 'increase' && direction !== 'decrease') throw invalid(`${what}.direction must be "increase" or "decrease"`);
  return Object.freeze({ name, kind: kind as MetricKind, direction });
}

function parseMetrics(v: unknown, what: string, serving: boolean): Metric[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_METRICS) throw invalid(`${what} must be a list of at most ${MAX_METRICS} metrics`);
  return v.map((m, i) => parseMetric(m, `${what}[${i}]`, serving));
}

/** The experiment's route, from its fields; a route fault becomes the experiment's, same message. */
function routeOf(o: Record<string, unknown>, name: string, model: string): RouteSpec {
  const json: Record<string, unknown> = { variants: own(o, 'variants'), assignment: own(o, 'assignment') ?? 'hash', salt: own(o, 'salt') ?? `experiment:${name}` };
  for (const k of ['bandit', 'log_features']) if (own(o, k) !== undefined) json[k] = own(o, k);
  try {
    return parseRoute(json, model);
  } catch (e) {
    if (e instanceof SluiceError && e.code === 'ROUTE_INVALID') throw invalid(e.message);
    throw e;
  }
}

function parseMde(v: unknown): ExperimentSpec['mde'] {
  if (v === undefined || v === null) return null;
  const o = objectWith(v, 'mde', ['kind', 'value']);
  const kind = own(o, 'kind');
  if (kind !== 'absolute' && kind !== 'relative') throw invalid('mde.kind must be "absolute" (in the metric\'s units) or "relative" (a fraction of the control\'s mean)');
  const value = numberIn(own(o, 'value'), 'mde.value', NaN, (n) => n > 0, 'a number > 0');
  if (Number.isNaN(value)) throw invalid('mde.value is required: a number > 0');
  return Object.freeze({ kind, value });
}

/** An experiment from its API JSON; EXPERIMENT_INVALID naming the field for anything else. */
export function parseExperiment(body: unknown): ExperimentSpec {
  const o = objectWith(body, 'experiment', FIELDS);
  const name = own(o, 'name');
  if (!isValidName(name)) throw invalid(invalidName('name').message);
  const model = own(o, 'model');
  if (!isValidName(model)) throw invalid(invalidName('model').message);
  checkName(model, 'model name');
  const route = routeOf(o, name, model);
  if (route.variants.length < 2) throw invalid('variants must have a control and at least one treatment (2 or more entries)');
  const versions = new Set(route.variants.map((v) => v.version));
  if (versions.size !== route.variants.length) throw invalid('variants must name distinct versions (each variant is one version of the model)');
  const controlName = own(o, 'control');
  const control = controlName === undefined ? 0 : route.variants.findIndex((v) => v.name === controlName);
  if (control < 0) throw invalid(`control ${JSON.stringify(String(controlName).slice(0, 64))} is not one of the variants`);
  const primary = parseMetric(own(o, 'primary'), 'primary', false);
  const secondary = parseMetrics(own(o, 'secondary'), 'secondary', false);
  const guardrails = parseMetrics(own(o, 'guardrails'), 'guardrails', true);
  const names = [primary, ...secondary, ...guardrails].map((m) => m.name);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated !== undefined) throw invalid(`metric name ${JSON.stringify(repeated)} repeats: metric names must be unique`);
  const autoPromote = own(o, 'auto_promote') ?? false;
  if (typeof autoPromote !== 'boolean') throw invalid('auto_promote must be true or false');
  const mde = parseMde(own(o, 'mde'));
  const minUnits = numberIn(own(o, 'min_units'), 'min_units', 100, (n) => Number.isInteger(n) && n >= 2 && n <= 1e9, 'an integer in [2, 1e9] (units per variant)');
  const rawMax = own(o, 'max_units');
  const maxUnits = rawMax === undefined || rawMax === null ? null : numberIn(rawMax, 'max_units', 0, (n) => Number.isInteger(n) && n >= minUnits && n <= 1e12, `an integer >= min_units (${minUnits}) and <= 1e12, or null`);
  return Object.freeze({
    name,
    model,
    variants: route.variants.map((v) => Object.freeze({ name: v.name, version: v.version, weight: v.weight })),
    control,
    route,
    primary,
    secondary,
    guardrails,
    alpha: numberIn(own(o, 'alpha'), 'alpha', 0.05, (n) => n > 0 && n < 0.5, 'a number in (0, 0.5)'),
    minUnits,
    minRuntimeS: numberIn(own(o, 'min_runtime_s'), 'min_runtime_s', 0, (n) => n >= 0 && n <= 365 * 86400, 'a number of seconds in [0, 31536000]'),
    autoPromote,
    maxUnits,
    mde,
  });
}

/** The experiment's API JSON (what parseExperiment reads back to an equal spec). */
export function experimentJson(s: ExperimentSpec): Record<string, unknown> {
  const metric = (m: Metric) => ({ name: m.name, kind: m.kind, direction: m.direction });
  const r = s.route;
  return {
    name: s.name,
    model: s.model,
    variants: s.variants.map((v) => ({ name: v.name, version: v.version, weight: v.weight })),
    control: s.variants[s.control]!.name,
    assignment: r.assignment,
    salt: r.salt,
    ...(r.bandit ? { bandit: { min_share: r.bandit.minShare, burn_in: r.bandit.burnIn, reward: r.bandit.reward, update_ms: r.bandit.updateMs } } : {}),
    log_features: r.logFeatures,
    primary: metric(s.primary),
    secondary: s.secondary.map(metric),
    guardrails: s.guardrails.map(metric),
    alpha: s.alpha,
    min_units: s.minUnits,
    min_runtime_s: s.minRuntimeS,
    auto_promote: s.autoPromote,
    max_units: s.maxUnits,
    mde: s.mde ? { kind: s.mde.kind, value: s.mde.value } : null,
  };
}
