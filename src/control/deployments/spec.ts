/**
 * A deployment's definition (issue #15) in its API form:
 *
 *   {"model": "ranker", "kind": "canary" | "blue-green" | "shadow", "candidate": "2",
 *    "stable"?: "1",                        (default: the production version)
 *    "window_s"?: 30,                       (the judge's window, canary and blue-green bake)
 *    "checks"?: {"max_error_increase": 0.01, "max_p99_ratio": 1.5, "alpha": 0.05, "min_requests": 100,
 *                "max_prediction_ks": 0.2, "min_predictions": 50, "confirm_s": 3},
 *    "auto_promote"?: true,
 *    canary:     "steps"?: [1, 5, 25, 50, 100] (percent of traffic), "step_min_s"?: 30,
 *                "step_min_requests"?: 100 (candidate requests per step before it may advance)
 *    blue-green: "bake_s"?: 60 (blue stays loaded and switch-back ready this long)
 *    shadow:     "fraction"?: 0.1, "duration_s"?: 60,
 *                "rule"?: {"min_agreement": 0.99, "max_p99_ratio": 1.5, "max_error_rate": 0.01, "min_compared": 100}}
 *
 * Every fault is DEPLOYMENT_INVALID naming the field.
 */
import { SluiceError } from '../../errors.js';
import { invalidName, isValidName } from '../../names.js';
import { objectWith as strictObject, own } from '../../strict-json.js';
import { DEFAULT_CHECKS, type CanaryChecks } from './checks.js';

export const DEPLOYMENT_KINDS = ['canary', 'blue-green', 'shadow'] as const;
export type DeploymentKind = (typeof DEPLOYMENT_KINDS)[number];

export interface ShadowRule {
  minAgreement: number;
  maxP99Ratio: number;
  maxErrorRate: number;
  minCompared: number;
}

export interface DeploymentSpec {
  model: string;
  kind: DeploymentKind;
  candidate: string;
  /** Undefined: the model's production version when the deployment starts. */
  stable?: string;
  windowS: number;
  checks: CanaryChecks;
  autoPromote: boolean;
  /** canary: traffic shares in (0, 1], increasing, the last 1. */
  steps: number[];
  stepMinS: number;
  stepMinRequests: number;
  /** blue-green */
  bakeS: number;
  /** shadow */
  fraction: number;
  durationS: number;
  rule: ShadowRule;
}

const FIELDS = ['model', 'kind', 'candidate', 'stable', 'window_s', 'checks', 'auto_promote', 'steps', 'step_min_s', 'step_min_requests', 'bake_s', 'fraction', 'duration_s', 'rule'];
const KIND_FIELDS: Record<DeploymentKind, string[]> = {
  canary: ['steps', 'step_min_s', 'step_min_requests'],
  'blue-green': ['bake_s'],
  shadow: ['fraction', 'duration_s', 'rule'],
};
const CHECK_FIELDS = ['max_error_increase', 'max_p99_ratio', 'alpha', 'min_requests', 'max_prediction_ks', 'min_predictions', 'confirm_s'];
const RULE_FIELDS = ['min_agreement', 'max_p99_ratio', 'max_error_rate', 'min_compared'];
export const DEFAULT_STEPS = [0.01, 0.05, 0.25, 0.5, 1];
export const DEFAULT_RULE: Readonly<ShadowRule> = Object.freeze({ minAgreement: 0.99, maxP99Ratio: 1.5, maxErrorRate: 0.01, minCompared: 100 });

function invalid(message: string): SluiceError {
  return new SluiceError('DEPLOYMENT_INVALID', message);
}

function objectWith(v: unknown, what: string, known: string[]): Record<string, unknown> {
  return strictObject(v, what, known, invalid);
}

function num(o: Record<string, unknown>, k: string, what: string, dflt: number, ok: (n: number) => boolean, rule: string): number {
  const v = own(o, k);
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw invalid(`${what} must be ${rule}`);
  return v;
}

function versionName(v: unknown, what: string): string {
  if (!isValidName(v)) throw invalid(invalidName(what).message);
  return v;
}

function parseSteps(v: unknown): number[] {
  if (v === undefined) return DEFAULT_STEPS;
  if (!Array.isArray(v) || v.length < 1 || v.length > 20) throw invalid('steps must be a list of 1 to 20 percentages');
  const steps = v.map((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0 || x > 100) throw invalid(`steps[${i}] must be a percentage in (0, 100]`);
    if (i > 0 && x <= (v[i - 1] as number)) throw invalid(`steps[${i}] must be larger than steps[${i - 1}]`);
    return x / 100;
  });
  if (steps[steps.length - 1] !== 1) throw invalid('steps must end at 100 (the candidate takes all traffic before it is promoted)');
  return steps;
}

function parseChecks(v: unknown): CanaryChecks {
  if (v === undefined) return DEFAULT_CHECKS;
  const o = objectWith(v, 'checks', CHECK_FIELDS);
  const d = DEFAULT_CHECKS;
  return Object.freeze({
    maxErrorIncrease: num(o, 'max_error_increase', 'checks.max_error_increase', d.maxErrorIncrease, (n) => n >= 0 && n < 1, 'a rate in [0, 1)'),
    maxP99Ratio: num(o, 'max_p99_ratio', 'checks.max_p99_ratio', d.maxP99Ratio, (n) => n >= 1, 'a ratio >= 1'),
    alpha: num(o, 'alpha', 'checks.alpha', d.alpha, (n) => n > 0 && n < 0.5, 'a number in (0, 0.5)'),
    minRequests: num(o, 'min_requests', 'checks.min_requests', d.minRequests, (n) => Number.isInteger(n) && n >= 1 && n <= 1e9, 'an integer in [1, 1e9]'),
    maxPredictionKs: num(o, 'max_prediction_ks', 'checks.max_prediction_ks', d.maxPredictionKs, (n) => n > 0 && n <= 1, 'a distance in (0, 1]'),
    minPredictions: num(o, 'min_predictions', 'checks.min_predictions', d.minPredictions, (n) => Number.isInteger(n) && n >= 10 && n <= 1e6, 'an integer in [10, 1e6]'),
    confirmS: num(o, 'confirm_s', 'checks.confirm_s', d.confirmS, (n) => n >= 0 && n <= 3600, 'seconds in [0, 3600]'),
  });
}

function parseRule(v: unknown): ShadowRule {
  if (v === undefined) return DEFAULT_RULE;
  const o = objectWith(v, 'rule', RULE_FIELDS);
  const d = DEFAULT_RULE;
  return Object.freeze({
    minAgreement: num(o, 'min_agreement', 'rule.min_agreement', d.minAgreement, (n) => n >= 0 && n <= 1, 'a share in [0, 1]'),
    maxP99Ratio: num(o, 'max_p99_ratio', 'rule.max_p99_ratio', d.maxP99Ratio, (n) => n >= 1, 'a ratio >= 1'),
    maxErrorRate: num(o, 'max_error_rate', 'rule.max_error_rate', d.maxErrorRate, (n) => n >= 0 && n <= 1, 'a rate in [0, 1]'),
    minCompared: num(o, 'min_compared', 'rule.min_compared', d.minCompared, (n) => Number.isInteger(n) && n >= 1 && n <= 1e9, 'an integer in [1, 1e9]'),
  });
}

export function parseDeployment(body: unknown): DeploymentSpec {
  const o = objectWith(body, 'deployment', FIELDS);
  const model = own(o, 'model');
  if (!isValidName(model)) throw invalid(invalidName('model').message);
  const kind = own(o, 'kind');
  if (typeof kind !== 'string' || !(DEPLOYMENT_KINDS as readonly string[]).includes(kind)) throw invalid(`kind must be one of ${DEPLOYMENT_KINDS.map((k) => JSON.stringify(k)).join(', ')}`);
  const k = kind as DeploymentKind;
  for (const [other, fields] of Object.entries(KIND_FIELDS)) {
    if (other === k) continue;
    for (const f of fields) if (own(o, f) !== undefined) throw invalid(`${f} is a ${other} setting, not a ${k} one`);
  }
  const candidate = versionName(own(o, 'candidate'), 'candidate');
  const stable = own(o, 'stable') === undefined ? undefined : versionName(own(o, 'stable'), 'stable');
  if (stable === candidate) throw invalid('candidate and stable must be different versions');
  const autoPromote = own(o, 'auto_promote') ?? true;
  if (typeof autoPromote !== 'boolean') throw invalid('auto_promote must be true or false');
  const seconds = (key: string, dflt: number) => num(o, key, key, dflt, (n) => n >= 0 && n <= 7 * 86400, 'a number of seconds in [0, 604800]');
  return Object.freeze({
    model,
    kind: k,
    candidate,
    ...(stable !== undefined ? { stable } : {}),
    windowS: num(o, 'window_s', 'window_s', 30, (n) => n >= 1 && n <= 3600, 'a number of seconds in [1, 3600]'),
    checks: parseChecks(own(o, 'checks')),
    autoPromote,
    steps: parseSteps(own(o, 'steps')),
    stepMinS: seconds('step_min_s', 30),
    stepMinRequests: num(o, 'step_min_requests', 'step_min_requests', 100, (n) => Number.isInteger(n) && n >= 0 && n <= 1e9, 'an integer in [0, 1e9]'),
    bakeS: seconds('bake_s', 60),
    fraction: num(o, 'fraction', 'fraction', 0.1, (n) => n > 0 && n <= 1, 'a share in (0, 1]'),
    durationS: seconds('duration_s', 60),
    rule: parseRule(own(o, 'rule')),
  });
}

/** The deployment's API JSON (what parseDeployment reads back to an equal spec). */
export function deploymentJson(s: DeploymentSpec): Record<string, unknown> {
  const c = s.checks;
  const common = {
    model: s.model, kind: s.kind, candidate: s.candidate, ...(s.stable !== undefined ? { stable: s.stable } : {}),
    window_s: s.windowS, checks: { max_error_increase: c.maxErrorIncrease, max_p99_ratio: c.maxP99Ratio, alpha: c.alpha, min_requests: c.minRequests, max_prediction_ks: c.maxPredictionKs, min_predictions: c.minPredictions, confirm_s: c.confirmS },
    auto_promote: s.autoPromote,
  };
  switch (s.kind) {
    case 'canary': return { ...common, steps: s.steps.map((x) => Math.round(x * 1e6) / 1e4), step_min_s: s.stepMinS, step_min_requests: s.stepMinRequests };
    case 'blue-green': return { ...common, bake_s: s.bakeS };
    case 'shadow': return { ...common, fraction: s.fraction, duration_s: s.durationS, rule: { min_agreement: s.rule.minAgreement, max_p99_ratio: s.rule.maxP99Ratio, max_error_rate: s.rule.maxErrorRate, min_compared: s.rule.minCompared } };
  }
}
