/**
 * The built-in rules, as data, and the sources they read. The sources are names a Signals must
 * resolve (signals.ts); until the server wires one it reads undefined and its rules never fire.
 * Built-in rules carry no model label: a Signals with `expand` applies them to every model (and
 * version) it has figures of, each label set its own alert.
 */
import { parseRule, type AlertRule } from './rules.js';

/** Sources the built-in rules read, and what each must answer. */
export const BUILTIN_SOURCES = {
  error_rate: 'share of failed requests (0-1) of a model version over the last window',
  latency_p99_over_slo: 'p99 latency of a model version over the last window divided by its SLO (1 = at the SLO)',
  drift_detected: '1 while a drift detector (PSI, KS, ADWIN, Page-Hinkley) flags the model version, else 0',
  learner_unstable: '1 while an online learner is unstable (diverging weights, non-finite updates, checkpoints failing), else 0',
  feedback_log_bytes_growth: 'bytes the local feedback log grew over the last window (> 0 while the database does not take feedback)',
} as const;

export type BuiltinSource = keyof typeof BUILTIN_SOURCES;

const rules: Array<Record<string, unknown> & { source: BuiltinSource }> = [
  // Error-rate bands: one alert per band, so a worsening error rate escalates.
  { name: 'error-rate-warning', source: 'error_rate', operator: '>', threshold: 0.01, for_ms: 60_000, severity: 'warning', summary: 'more than 1% of requests fail' },
  { name: 'error-rate-critical', source: 'error_rate', operator: '>', threshold: 0.05, for_ms: 30_000, severity: 'critical', summary: 'more than 5% of requests fail' },
  { name: 'error-rate-emergency', source: 'error_rate', operator: '>', threshold: 0.25, for_ms: 10_000, severity: 'emergency', summary: 'more than 25% of requests fail' },
  { name: 'p99-above-slo', source: 'latency_p99_over_slo', operator: '>', threshold: 1, for_ms: 60_000, severity: 'warning', summary: 'p99 latency is above its SLO' },
  { name: 'drift-detected', source: 'drift_detected', operator: '>=', threshold: 1, for_ms: 0, severity: 'warning', summary: 'inputs or predictions drifted from the reference window' },
  { name: 'learner-unstable', source: 'learner_unstable', operator: '>=', threshold: 1, for_ms: 0, severity: 'critical', summary: 'an online learner is unstable' },
  { name: 'feedback-log-growing', source: 'feedback_log_bytes_growth', operator: '>', threshold: 0, for_ms: 120_000, severity: 'warning', summary: 'the local feedback log keeps growing: the database does not take feedback' },
];

export const BUILTIN_RULES: readonly AlertRule[] = Object.freeze(rules.map((r) => parseRule(r, true)));
