/**
 * Silences: "do not notify about alerts whose rule, severity and labels match these matchers,
 * until `ends_at`". A silenced alert still changes state (and its transitions are recorded, naming
 * the silences); only its notices are held back. Parsed from the API's JSON here (ALERT_INVALID).
 */
import { fieldsOnly, invalid, isObject, type Labels, type Severity } from './rules.js';

export interface Matcher {
  /** "rule" (the rule's name), "severity", or a label name. */
  readonly name: string;
  readonly value: string;
  readonly op: '=' | '!=';
}

export interface SilenceSpec {
  readonly matchers: readonly Matcher[];
  readonly startsAt: Date;
  readonly endsAt: Date;
  readonly comment: string;
}

export interface Silence extends SilenceSpec {
  readonly id: number;
  readonly createdBy: string;
  readonly createdAt: Date;
  readonly expiredBy: string | null;
}

const MATCHER_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const MAX_MATCHERS = 16;
/** A silence may last a year at most: a forgotten one should not hide alerts forever. */
const MAX_SPAN_MS = 366 * 24 * 3_600_000;

function time(v: unknown, what: string): Date {
  const d = typeof v === 'string' ? new Date(v) : undefined;
  if (d === undefined || Number.isNaN(d.getTime())) throw invalid(`${what} must be an ISO 8601 time, e.g. "2026-12-02T18:00:00Z"`);
  return d;
}

function matcher(v: unknown, i: number): Matcher {
  const what = `matchers[${i}]`;
  if (!isObject(v)) throw invalid(`${what} must be {"name", "value", "op"?: "=" | "!="}`);
  fieldsOnly(v, ['name', 'value', 'op'], what);
  const { name, value, op = '=' } = v;
  if (typeof name !== 'string' || !MATCHER_NAME.test(name)) throw invalid(`${what}.name must be "rule", "severity" or a label name`);
  if (typeof value !== 'string' || value.length > 256 || value.includes('\u0000')) throw invalid(`${what}.value must be a string of at most 256 characters`);
  if (op !== '=' && op !== '!=') throw invalid(`${what}.op must be "=" or "!="`);
  return Object.freeze({ name, value, op });
}

/** A silence as the API takes it: {matchers, ends_at, comment, starts_at?}; `now` is the default start. */
export function parseSilence(v: unknown, now: Date): SilenceSpec {
  if (!isObject(v)) throw invalid('a silence must be a JSON object {matchers, ends_at, comment}');
  fieldsOnly(v, ['matchers', 'starts_at', 'ends_at', 'comment'], 'silence');
  const m = Object.hasOwn(v, 'matchers') ? v.matchers : undefined;
  if (!Array.isArray(m) || m.length === 0 || m.length > MAX_MATCHERS) throw invalid(`matchers must be a list of 1 to ${MAX_MATCHERS} {"name", "value", "op"?}`);
  const matchers = Object.freeze(m.map(matcher));
  // A silence that matches everything must say so with a matcher: one with only "!=" would.
  if (!matchers.some((x) => x.op === '=')) throw invalid('matchers need at least one "=" matcher (a silence of everything is too easy to make by mistake)');
  const startsAt = Object.hasOwn(v, 'starts_at') ? time(v.starts_at, 'starts_at') : now;
  const endsAt = time(Object.hasOwn(v, 'ends_at') ? v.ends_at : undefined, 'ends_at');
  if (endsAt.getTime() <= Math.max(now.getTime(), startsAt.getTime())) throw invalid('ends_at must be later than now and than starts_at');
  if (endsAt.getTime() - startsAt.getTime() > MAX_SPAN_MS) throw invalid('a silence may last 366 days at most');
  const comment = Object.hasOwn(v, 'comment') ? v.comment : undefined;
  if (typeof comment !== 'string' || comment.trim() === '' || comment.length > 1024) throw invalid('comment must say why, in 1 to 1024 characters');
  return Object.freeze({ matchers, startsAt, endsAt, comment });
}

/** Whether the silence is in force at `now`. */
export function isActive(s: SilenceSpec, now: Date): boolean {
  return s.startsAt.getTime() <= now.getTime() && now.getTime() < s.endsAt.getTime();
}

/** Whether every matcher holds for the alert (a missing label reads as ""). */
export function matches(s: SilenceSpec, alert: { rule: string; severity: Severity; labels: Labels }): boolean {
  return s.matchers.every((m) => {
    const actual = m.name === 'rule' ? alert.rule : m.name === 'severity' ? alert.severity : (Object.hasOwn(alert.labels, m.name) ? alert.labels[m.name]! : '');
    return m.op === '=' ? actual === m.value : actual !== m.value;
  });
}

export function silenceJson(s: Silence, now: Date): Record<string, unknown> {
  return {
    id: s.id,
    matchers: s.matchers.map((m) => ({ ...m })),
    starts_at: s.startsAt.toISOString(),
    ends_at: s.endsAt.toISOString(),
    comment: s.comment,
    created_by: s.createdBy,
    created_at: s.createdAt.toISOString(),
    expired_by: s.expiredBy,
    active: isActive(s, now),
  };
}
