/**
 * Alert rules: "when `source` (read through Signals with `labels`) `operator` `threshold` has held
 * for `for_ms`, raise an alert of `severity` saying `summary`". Parsed from the API's JSON here,
 * once; every fault is ALERT_INVALID naming the field, so every transport and the CLI answer
 * alike.
 */
import { SluiceError } from '../../errors.js';
import { isValidName } from '../../names.js';

export const SEVERITIES = ['info', 'warning', 'critical', 'emergency'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const OPERATORS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type Operator = (typeof OPERATORS)[number];

/** Label name -> value (model, version, ...). */
export type Labels = Readonly<Record<string, string>>;

export interface AlertRule {
  readonly name: string;
  /** A metric or detector name, resolved by Signals (src/control/alerts/signals.ts). */
  readonly source: string;
  readonly labels: Labels;
  readonly operator: Operator;
  readonly threshold: number;
  /** How long the condition must hold before the alert fires (0: at the first evaluation). */
  readonly forMs: number;
  readonly severity: Severity;
  readonly summary: string;
  /** Defined in code (builtin.ts), not through the API. */
  readonly builtin: boolean;
}

/** The rule as the API shows and takes it. */
export interface AlertRuleJson {
  name: string;
  source: string;
  labels: Record<string, string>;
  operator: Operator;
  threshold: number;
  for_ms: number;
  severity: Severity;
  summary: string;
  builtin?: boolean;
}

/** Source names: lower-case words joined by `_ . : -` ("error_rate", "drift.detected"). */
const SOURCE = /^[a-z][a-z0-9_.:-]{0,127}$/;
/** Label names, as Prometheus writes them. */
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_LABELS = 16;
const MAX_FOR_MS = 7 * 24 * 3_600_000;
const MAX_TEXT = 1024;

export function invalid(message: string): SluiceError {
  return new SluiceError('ALERT_INVALID', message);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function fieldsOnly(o: Record<string, unknown>, known: readonly string[], what: string): void {
  for (const k of Object.keys(o)) if (!known.includes(k)) throw invalid(`${what}: unknown field ${JSON.stringify(k.slice(0, 64))} (known: ${known.join(', ')})`);
}

function get(o: Record<string, unknown>, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

/** Labels: at most 16 names of the Prometheus form, each with a value of 1-256 characters. */
export function parseLabels(v: unknown, what = 'labels'): Labels {
  if (v === undefined) return Object.freeze({});
  if (!isObject(v)) throw invalid(`${what} must be an object of label name -> string value`);
  const entries = Object.entries(v);
  if (entries.length > MAX_LABELS) throw invalid(`${what} has more than ${MAX_LABELS} labels`);
  for (const [k, x] of entries) {
    if (!LABEL_NAME.test(k)) throw invalid(`${what}: label name ${JSON.stringify(k.slice(0, 64))} must be letters, digits and _, not starting with a digit`);
    // Silence matchers name the rule and its severity with these: a label may not take them.
    if (k === 'rule' || k === 'severity') throw invalid(`${what}: "${k}" is reserved (silences match the rule's ${k} by it)`);
    if (typeof x !== 'string' || x === '' || x.length > 256 || x.includes('\u0000')) throw invalid(`${what}.${k} must be a string of 1 to 256 characters`);
  }
  return Object.freeze(Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))) as Labels;
}

/** The one key of a label set (sorted keys), so that {a, b} and {b, a} are one alert. */
export function labelsKey(labels: Labels): string {
  return JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

function text(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.trim() === '' || v.length > MAX_TEXT || v.includes('\u0000')) throw invalid(`${what} must be a non-empty string of at most ${MAX_TEXT} characters`);
  return v;
}

/** Checks an alert rule in its API form; `builtin` marks the ones defined in code. */
export function parseRule(v: unknown, builtin = false): AlertRule {
  if (!isObject(v)) throw invalid('an alert rule must be a JSON object');
  fieldsOnly(v, ['name', 'source', 'labels', 'operator', 'threshold', 'for_ms', 'severity', 'summary'], 'rule');
  const name = get(v, 'name');
  if (!isValidName(name)) throw invalid('name must be 1-128 characters of A-Z a-z 0-9 . _ - + @, starting with a letter or digit');
  const source = get(v, 'source');
  if (typeof source !== 'string' || !SOURCE.test(source)) throw invalid('source must name a metric or detector: lower-case letters, digits and _ . : -, starting with a letter (e.g. "error_rate")');
  const operator = get(v, 'operator');
  if (!OPERATORS.includes(operator as Operator)) throw invalid(`operator must be one of ${OPERATORS.join(' ')}`);
  const threshold = get(v, 'threshold');
  if (typeof threshold !== 'number' || !Number.isFinite(threshold)) throw invalid('threshold must be a finite number');
  const forMs = get(v, 'for_ms') ?? 0;
  if (typeof forMs !== 'number' || !Number.isSafeInteger(forMs) || forMs < 0 || forMs > MAX_FOR_MS) throw invalid(`for_ms must be an integer number of milliseconds in [0, ${MAX_FOR_MS}]`);
  const severity = get(v, 'severity') ?? 'warning';
  if (!SEVERITIES.includes(severity as Severity)) throw invalid(`severity must be one of ${SEVERITIES.join(', ')}`);
  const summary = get(v, 'summary');
  return Object.freeze({
    name, source, labels: parseLabels(get(v, 'labels')), operator: operator as Operator, threshold, forMs,
    severity: severity as Severity,
    summary: summary === undefined ? `${source} ${String(operator)} ${threshold}` : text(summary, 'summary'),
    builtin,
  });
}

export function ruleJson(r: AlertRule): AlertRuleJson {
  return {
    name: r.name, source: r.source, labels: { ...r.labels }, operator: r.operator, threshold: r.threshold,
    for_ms: r.forMs, severity: r.severity, summary: r.summary, ...(r.builtin ? { builtin: true } : {}),
  };
}

/** Whether `value operator threshold` holds. */
export function holds(value: number, operator: Operator, threshold: number): boolean {
  switch (operator) {
    case '>': return value > threshold;
    case '>=': return value >= threshold;
    case '<': return value < threshold;
    case '<=': return value <= threshold;
    case '==': return value === threshold;
    case '!=': return value !== threshold;
  }
}
