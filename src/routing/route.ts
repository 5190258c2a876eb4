/**
 * Route specs: how a model's unversioned requests are spread over its versions (issue #12).
 * A route is one immutable, frozen object; publishing a new one replaces the reference (the
 * same atomic switch as a model swap), so a request that read a route sees all of it.
 *
 * The API form (snake_case) is
 *   {"variants": [{"name": "a", "version": "1", "weight": 0.9}, ...], "assignment": "hash",
 *    "salt"?: "...", "shadows"?: [{"version": "3", "fraction": 0.5}], "log_features"?: false,
 *    "bandit"?: {"min_share": 0.05, "burn_in": 100, "reward": "bernoulli", "update_ms": 1000}}
 * (assignment "bandit" only). A hash route's variants may also each carry `"ranges": [[start, end], ...]`
 * (all or none): their share of the unit buckets, pieces that together partition [0, 1), so that a
 * weight change can move only the units it has to (src/routing/ranges.ts, rebalanceRoute); the
 * weight is then the ranges' total length (given or not, it is derived from them).
 * and `parseRoute` refuses anything else with ROUTE_INVALID (400), naming the field, so an
 * operator's typo ("varaints", a weight of "0.9") never becomes a silently different route.
 */
import { SluiceError } from '../errors.js';
import { checkName, invalidName, isValidName } from '../names.js';
import { objectWith as strictObject, own } from '../strict-json.js';
import { checkPartition, cumulativeRanges, RANGE_TOLERANCE, rangeWeights, rebalance, type Range } from './ranges.js';

export interface Variant {
  name: string;
  version: string;
  weight: number;
  /** Hash routes only, on every variant or none: its pieces of [0, 1) (weight = their length). */
  ranges?: readonly Range[];
}
/** `fraction` in (0, 1]: the share of routed requests also mirrored to `version`. */
export interface Shadow { version: string; fraction: number }

export type Assignment = 'hash' | 'random' | 'bandit';

/**
 * A bandit route (`assignment: "bandit"`): traffic moves towards the variants whose rewards
 * (joined feedback) are best, by Thompson sampling over each variant's reward posterior
 * (src/routing/route-bandit.ts). Until every variant has `burnIn` rewards the weights stay as
 * given; then each variant gets minShare + (1 - K * minShare) * P(it is the best), recomputed
 * every `updateMs`.
 */
export interface RouteBandit {
  minShare: number;
  burnIn: number;
  /** bernoulli: rewards in [0, 1], Beta posteriors; gaussian: any rewards, Normal posteriors. */
  reward: 'bernoulli' | 'gaussian';
  updateMs: number;
}

export interface RouteSpec {
  /** At least one; names unique; weights normalised to sum 1 (each one is its propensity). */
  variants: Variant[];
  assignment: Assignment;
  /** Hashed with the unit id; defaults to the model name (stable across restarts and replicas). */
  salt: string;
  /** Versions distinct from each other. */
  shadows: Shadow[];
  logFeatures: boolean;
  /** Only with assignment "bandit". */
  bandit?: RouteBandit;
}

/** Bounds that keep a route small enough to scan per request and to read at a glance. */
export const MAX_VARIANTS = 64;
export const MAX_SHADOWS = 16;
export const MAX_SALT_LENGTH = 256;
/** Ranges of all variants together: a few pieces per variant, as rebalancing fragments them. */
export const MAX_RANGES = 4 * MAX_VARIANTS;

/**
 * Weights that already sum to 1 within this are kept as they are, so that parsing a route's own
 * JSON gives back exactly the same numbers (dividing by a sum of 0.9999999999999999 again would
 * move the last bits, and a stored route would no longer compare equal to itself). The rounding
 * of one normalisation over MAX_VARIANTS weights is ~1e-14, far below it. Variants with ranges
 * are not normalised at all: their weights are derived from the ranges, which are kept exactly as
 * given, so the same ranges always give the same weights.
 */
const NORMALISED_WITHIN = 1e-12;

const ROUTE_FIELDS = ['variants', 'assignment', 'salt', 'shadows', 'log_features', 'bandit'];
const BANDIT_FIELDS = ['min_share', 'burn_in', 'reward', 'update_ms'];
const VARIANT_FIELDS = ['name', 'version', 'weight', 'ranges'];
const SHADOW_FIELDS = ['version', 'fraction'];

function invalid(message: string): SluiceError {
  return new SluiceError('ROUTE_INVALID', message);
}

function objectWith(v: unknown, what: string, known: string[]): Record<string, unknown> {
  return strictObject(v, what, known, invalid);
}

function name(v: unknown, what: string): string {
  if (!isValidName(v)) throw invalid(invalidName(what).message);
  return v;
}

function positiveNumber(v: unknown, what: string, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > max) {
    throw invalid(`${what} must be a finite number > 0${max === Infinity ? '' : ` and <= ${max}`}`);
  }
  return v;
}

function list(v: unknown, what: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${what} must be a list`);
  if (v.length < min || v.length > max) throw invalid(`${what} must have ${min === max ? min : `${min} to ${max}`} entries, not ${v.length}`);
  return v;
}

/** One variant's ranges as given: a list of [start, end] number pairs (checkPartition checks the values). */
function parseRangeList(v: unknown, i: number): Range[] {
  return list(v, `variants[${i}].ranges`, 1, MAX_RANGES).map((r, j) => {
    if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'number' || typeof r[1] !== 'number') {
      throw invalid(`variants[${i}].ranges[${j}] must be a pair [start, end] of numbers`);
    }
    return Object.freeze([r[0], r[1]] as const);
  });
}

/**
 * Variants with ranges (every one has them): the ranges must partition [0, 1); each weight is
 * derived from them, and a weight given beside them must agree (within the boundaries' tolerance).
 */
function rangedVariants(parsed: Array<{ name: string; version: string; weight: unknown; ranges: Range[] }>): Variant[] {
  const total = parsed.reduce((a, x) => a + x.ranges.length, 0);
  if (total > MAX_RANGES) throw invalid(`variants: at most ${MAX_RANGES} ranges in all, not ${total}`);
  const ranges = parsed.map((x) => x.ranges);
  checkPartition(ranges);
  const weights = rangeWeights(ranges);
  return parsed.map((x, i) => {
    const given = x.weight === undefined ? undefined : positiveNumber(x.weight, `variants[${i}].weight`);
    if (given !== undefined && Math.abs(given - weights[i]!) > RANGE_TOLERANCE * (2 * x.ranges.length + 1)) {
      throw invalid(`variants[${i}].weight ${given} differs from the length of its ranges, ${weights[i]}: give the length, or leave weight out`);
    }
    return Object.freeze({ name: x.name, version: x.version, weight: weights[i]!, ranges: Object.freeze(x.ranges) });
  });
}

function parseVariants(v: unknown): Variant[] {
  if (v === undefined) throw invalid('variants is required: a list of {name, version, weight}');
  const raw = list(v, 'variants', 1, MAX_VARIANTS);
  const parsed: Array<{ name: string; version: string; weight: unknown; ranges: Range[] | undefined }> = [];
  const seen = new Map<string, number>();
  raw.forEach((item, i) => {
    const o = objectWith(item, `variants[${i}]`, VARIANT_FIELDS);
    const n = name(own(o, 'name'), `variants[${i}].name`);
    const first = seen.get(n);
    if (first !== undefined) throw invalid(`variants[${i}].name ${JSON.stringify(n)} repeats variants[${first}].name: variant names must be unique`);
    seen.set(n, i);
    const ranges = own(o, 'ranges');
    parsed.push({
      name: n,
      version: name(own(o, 'version'), `variants[${i}].version`),
      weight: own(o, 'weight'),
      ranges: ranges === undefined ? undefined : parseRangeList(ranges, i),
    });
  });
  const ranged = parsed.findIndex((x) => x.ranges !== undefined);
  if (ranged >= 0) {
    const missing = parsed.findIndex((x) => x.ranges === undefined);
    if (missing >= 0) throw invalid(`variants[${missing}].ranges is missing: variants[${ranged}] has ranges, so every variant needs them`);
    return rangedVariants(parsed as Array<{ name: string; version: string; weight: unknown; ranges: Range[] }>);
  }
  const out: Variant[] = parsed.map((x, i) => ({ name: x.name, version: x.version, weight: positiveNumber(x.weight, `variants[${i}].weight`) }));
  const sum = out.reduce((a, x) => a + x.weight, 0);
  if (!Number.isFinite(sum)) throw invalid('variants: the weights must sum to a finite number');
  const scale = Math.abs(sum - 1) <= NORMALISED_WITHIN ? 1 : sum;
  return out.map((x) => Object.freeze({ ...x, weight: x.weight / scale }));
}

function parseShadows(v: unknown): Shadow[] {
  if (v === undefined) return [];
  const raw = list(v, 'shadows', 0, MAX_SHADOWS);
  const seen = new Map<string, number>();
  return raw.map((item, i) => {
    const o = objectWith(item, `shadows[${i}]`, SHADOW_FIELDS);
    const version = name(own(o, 'version'), `shadows[${i}].version`);
    const first = seen.get(version);
    if (first !== undefined) throw invalid(`shadows[${i}].version ${JSON.stringify(version)} repeats shadows[${first}].version: shadow versions must be distinct`);
    seen.set(version, i);
    if (own(o, 'fraction') === undefined) throw invalid(`shadows[${i}].fraction is required: a number in (0, 1]`);
    return Object.freeze({ version, fraction: positiveNumber(own(o, 'fraction'), `shadows[${i}].fraction`, 1) });
  });
}

function parseBandit(v: unknown, variants: number): RouteBandit {
  const o = v === undefined ? {} : objectWith(v, 'bandit', BANDIT_FIELDS);
  const num = (key: string, dflt: number, ok: (n: number) => boolean, rule: string): number => {
    const x = own(o, key);
    if (x === undefined) return dflt;
    if (typeof x !== 'number' || !Number.isFinite(x) || !ok(x)) throw invalid(`bandit.${key} must be ${rule}`);
    return x;
  };
  const reward = own(o, 'reward') ?? 'bernoulli';
  if (reward !== 'bernoulli' && reward !== 'gaussian') throw invalid('bandit.reward must be "bernoulli" (rewards in [0, 1]) or "gaussian"');
  return Object.freeze({
    minShare: num('min_share', Math.min(0.05, 0.5 / variants), (n) => n >= 0 && n * variants <= 1, `a share with min_share * ${variants} variants <= 1`),
    burnIn: num('burn_in', 100, (n) => Number.isInteger(n) && n >= 0 && n <= 1e9, 'an integer number of rewards per variant in [0, 1e9]'),
    reward,
    updateMs: num('update_ms', 1000, (n) => n >= 10 && n <= 3_600_000, 'a number of milliseconds in [10, 3600000]'),
  });
}

function parseSalt(v: unknown, model: string): string {
  if (v === undefined) return model;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_SALT_LENGTH) throw invalid(`salt must be a string of 1 to ${MAX_SALT_LENGTH} characters`);
  // PostgreSQL text (and jsonb) cannot hold NUL.
  if (v.includes('\u0000')) throw invalid('salt must not contain NUL characters');
  return v;
}

/**
 * A route from its API JSON, for `model` (the default salt). Every bad input throws
 * ROUTE_INVALID naming the field; the result is frozen, weights normalised.
 */
export function parseRoute(body: unknown, model: string): RouteSpec {
  checkName(model, 'model name');
  const o = objectWith(body, 'route', ROUTE_FIELDS);
  const variants = parseVariants(own(o, 'variants'));
  const assignment = own(o, 'assignment');
  if (assignment !== 'hash' && assignment !== 'random' && assignment !== 'bandit') throw invalid('assignment must be "hash" (sticky per unit id), "random" (per request) or "bandit" (Thompson sampling on the variants\' rewards)');
  if (assignment !== 'hash' && variants[0]!.ranges) throw invalid('variants[0].ranges need assignment "hash": ranges place unit ids\' hash buckets');
  const rawBandit = own(o, 'bandit');
  if (rawBandit !== undefined && assignment !== 'bandit') throw invalid('bandit settings need assignment "bandit"');
  const bandit = assignment === 'bandit' ? parseBandit(rawBandit, variants.length) : undefined;
  const salt = parseSalt(own(o, 'salt'), model);
  const shadows = parseShadows(own(o, 'shadows'));
  const rawLog = own(o, 'log_features');
  const logFeatures = rawLog === undefined ? false : rawLog;
  if (typeof logFeatures !== 'boolean') throw invalid('log_features must be true or false');
  return Object.freeze({
    variants: Object.freeze(variants) as Variant[],
    assignment,
    salt,
    shadows: Object.freeze(shadows) as Shadow[],
    logFeatures,
    ...(bandit ? { bandit } : {}),
  });
}

/**
 * Who put a route in force (DESIGN.md: a route's owner). `manual`: an operator (the admin API,
 * `sluice route`); `experiment` and `deployment`: the controllers of issues #13-#15. The owner
 * is kept beside the route, not inside its JSON: it says who may change it, not how traffic is
 * spread. A change by another owner over an experiment's or a deployment's route needs `force`
 * (src/registry/routes.ts), so that an operator never silently clobbers a running controller.
 */
export const ROUTE_OWNERS = ['manual', 'experiment', 'deployment'] as const;
export type RouteOwner = (typeof ROUTE_OWNERS)[number];
export const DEFAULT_ROUTE_OWNER: RouteOwner = 'manual';

export function isRouteOwner(v: unknown): v is RouteOwner {
  return typeof v === 'string' && (ROUTE_OWNERS as readonly string[]).includes(v);
}

/** An owner from the API (absent: manual); anything else is ROUTE_INVALID naming the field. */
export function parseRouteOwner(v: unknown): RouteOwner {
  if (v === undefined) return DEFAULT_ROUTE_OWNER;
  if (!isRouteOwner(v)) throw invalid(`owner must be one of ${ROUTE_OWNERS.map((o) => JSON.stringify(o)).join(', ')}`);
  return v;
}

/**
 * Whether a change made on behalf of `by` over a route owned by `owner` needs `force`: only a
 * controller's route is protected (a manual route is anyone's to replace), and only from others.
 */
export function needsForce(owner: RouteOwner, by: RouteOwner): boolean {
  return owner !== 'manual' && owner !== by;
}

/**
 * The owner whose route in force a change on behalf of `by` replaces with force (null when no
 * force is needed); ROUTE_OWNED (409) when it needs force and has none.
 */
export function overriddenOwner(model: string, current: { owner: RouteOwner; generation: number }, by: RouteOwner, force: boolean): RouteOwner | null {
  if (!needsForce(current.owner, by)) return null;
  if (!force) {
    const whose = current.owner === 'experiment' ? 'an experiment' : 'a deployment';
    throw new SluiceError('ROUTE_OWNED', `the route of ${model} belongs to ${whose} (generation ${current.generation}); a ${by} change over it needs "force": true`);
  }
  return current.owner;
}

/** A route in its API (and stored) form. */
export interface RouteJson {
  variants: Variant[];
  assignment: Assignment;
  salt: string;
  shadows: Shadow[];
  log_features: boolean;
  bandit?: { min_share: number; burn_in: number; reward: RouteBandit['reward']; update_ms: number };
}

/** The API's snake_case JSON of a route (what parseRoute reads back to an equal spec). */
export function routeJson(spec: RouteSpec): RouteJson {
  return {
    variants: spec.variants.map((v) => ({ name: v.name, version: v.version, weight: v.weight, ...(v.ranges ? { ranges: v.ranges.map(([a, b]) => [a, b] as const) } : {}) })),
    assignment: spec.assignment,
    salt: spec.salt,
    shadows: spec.shadows.map((s) => ({ version: s.version, fraction: s.fraction })),
    log_features: spec.logFeatures,
    ...(spec.bandit ? { bandit: { min_share: spec.bandit.minShare, burn_in: spec.bandit.burnIn, reward: spec.bandit.reward, update_ms: spec.bandit.updateMs } } : {}),
  };
}

/** Every version the route needs loaded (variants, then shadows), each once. */
export function routeVersions(spec: RouteSpec): string[] {
  return [...new Set([...spec.variants.map((v) => v.version), ...spec.shadows.map((s) => s.version)])];
}

/** Whether two routes are the same (field by field, in order: variant order matters to hash assignment). */
export function sameRoute(a: RouteSpec, b: RouteSpec): boolean {
  return JSON.stringify(routeJson(a)) === JSON.stringify(routeJson(b));
}

/** A hash route's ranges per variant: its own, or the cumulative ones its weights give without them. */
export function routeRanges(spec: RouteSpec): Range[][] {
  if (spec.variants[0]!.ranges) return spec.variants.map((v) => [...v.ranges!]);
  return cumulativeRanges(spec.variants.map((v) => v.weight));
}

/**
 * The hash route `spec` (of `model`) with its weights changed to `newWeights` (one per variant,
 * positive, normalised), moving the fewest units: the result carries ranges (src/routing/ranges.ts
 * rebalance), so a route without them gets them here, and a unit keeps its variant unless it
 * was in a moved piece. ROUTE_INVALID for another assignment, bad weights, or when the ranges
 * would fragment into more than MAX_RANGES pieces.
 */
export function rebalanceRoute(spec: RouteSpec, newWeights: readonly number[], model: string): RouteSpec {
  if (spec.assignment !== 'hash') throw invalid(`rebalanceRoute needs a hash route, not ${spec.assignment}`);
  const next = rebalance(routeRanges(spec), newWeights);
  const json = routeJson(spec);
  return parseRoute({ ...json, variants: json.variants.map((v, i) => ({ name: v.name, version: v.version, ranges: next[i] })) }, model);
}
