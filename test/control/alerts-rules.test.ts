/**
 * Alert rules and silences as the API gives them: every fault is ALERT_INVALID naming the
 * field; label sets are one alert whatever their key order; silence matchers; the state machine
 * step by step (including the notices a silence holds back), and the built-in rules.
 */
import { describe, expect, it } from 'vitest';
import { BUILTIN_RULES, BUILTIN_SOURCES } from '../../src/control/alerts/builtin.js';
import { holds, labelsKey, parseRule, ruleJson } from '../../src/control/alerts/rules.js';
import { matches, parseSilence } from '../../src/control/alerts/silences.js';
import { INACTIVE, step, type AlertStatus } from '../../src/control/alerts/state.js';
import { SluiceError } from '../../src/errors.js';

const good = { name: 'slow', source: 'latency_p99_ms', labels: { model: 'm', version: '2' }, operator: '>', threshold: 50, for_ms: 30_000, severity: 'critical', summary: 'p99 over 50 ms' };

function fault(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SluiceError);
    expect((e as SluiceError).code).toBe('ALERT_INVALID');
    return (e as Error).message;
  }
  throw new Error('no error');
}

describe('alert rules', () => {
  it('parses a rule and gives it back in API form, with defaults', () => {
    const r = parseRule(good);
    expect(ruleJson(r)).toEqual(good);
    expect(ruleJson(parseRule({ name: 'x', source: 'error_rate', operator: '>=', threshold: 0.1 }))).toEqual({
      name: 'x', source: 'error_rate', labels: {}, operator: '>=', threshold: 0.1, for_ms: 0, severity: 'warning', summary: 'error_rate >= 0.1',
    });
  });

  it('refuses each bad field with ALERT_INVALID naming it', () => {
    const cases: Array<[unknown, RegExp]> = [
      [[1], /JSON object/],
      [{ ...good, extra: 1 }, /unknown field "extra"/],
      [{ ...good, name: 'a b' }, /name must be/],
      [{ ...good, source: 'Error Rate' }, /source must name/],
      [{ ...good, operator: '=>' }, /operator must be one of > >= < <= == !=/],
      [{ ...good, threshold: '5' }, /threshold must be a finite number/],
      [{ ...good, for_ms: -1 }, /for_ms/],
      [{ ...good, for_ms: 1.5 }, /for_ms/],
      [{ ...good, severity: 'page' }, /severity must be one of info, warning, critical, emergency/],
      [{ ...good, summary: '' }, /summary/],
      [{ ...good, labels: { '1x': 'a' } }, /label name "1x"/],
      [{ ...good, labels: { model: 3 } }, /labels.model must be a string/],
      [{ ...good, labels: { rule: 'a' } }, /"rule" is reserved/],
      [{ ...good, labels: [] }, /labels must be an object/],
    ];
    for (const [body, message] of cases) expect(fault(() => parseRule(body))).toMatch(message);
  });

  it('compares with each operator and keys a label set whatever its order', () => {
    expect([holds(2, '>', 1), holds(1, '>', 1), holds(1, '>=', 1), holds(0, '<', 1), holds(1, '<=', 1), holds(1, '==', 1), holds(2, '!=', 1)]).toEqual([true, false, true, true, true, true, true]);
    expect(labelsKey({ b: '1', a: '2' })).toBe(labelsKey({ a: '2', b: '1' }));
    expect(labelsKey({ a: '1' })).not.toBe(labelsKey({ a: '2' }));
  });

  it('defines the built-in rules as data over the documented sources', () => {
    expect(BUILTIN_RULES.map((r) => r.name)).toEqual([
      'error-rate-warning', 'error-rate-critical', 'error-rate-emergency', 'p99-above-slo', 'drift-detected', 'learner-unstable', 'feedback-log-growing',
    ]);
    for (const r of BUILTIN_RULES) {
      expect(Object.keys(BUILTIN_SOURCES)).toContain(r.source);
      expect(r.builtin).toBe(true);
    }
    // The error-rate bands escalate: a higher band has a higher threshold and severity.
    expect(BUILTIN_RULES.filter((r) => r.source === 'error_rate').map((r) => [r.threshold, r.severity])).toEqual([[0.01, 'warning'], [0.05, 'critical'], [0.25, 'emergency']]);
  });
});

describe('silences', () => {
  const now = new Date('2026-12-02T12:00:00Z');
  const body = { matchers: [{ name: 'rule', value: 'slow' }, { name: 'model', value: 'm' }, { name: 'version', value: '1', op: '!=' }], ends_at: '2026-12-02T13:00:00Z', comment: 'deploying' };

  it('matches on rule name, severity and labels, all matchers together', () => {
    const s = parseSilence(body, now);
    expect(s.startsAt).toEqual(now);
    expect(matches(s, { rule: 'slow', severity: 'critical', labels: { model: 'm', version: '2' } })).toBe(true);
    expect(matches(s, { rule: 'slow', severity: 'critical', labels: { model: 'm', version: '1' } })).toBe(false);
    expect(matches(s, { rule: 'slow', severity: 'critical', labels: { model: 'n' } })).toBe(false);
    expect(matches(s, { rule: 'other', severity: 'critical', labels: { model: 'm' } })).toBe(false);
    expect(matches(parseSilence({ ...body, matchers: [{ name: 'severity', value: 'info' }] }, now), { rule: 'x', severity: 'info', labels: {} })).toBe(true);
  });

  it('refuses bad silences with ALERT_INVALID', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['x', /JSON object/],
      [{ ...body, matchers: [] }, /matchers must be a list of 1 to 16/],
      [{ ...body, matchers: [{ name: 'rule', value: 'slow', op: '=~' }] }, /op must be "=" or "!="/],
      [{ ...body, matchers: [{ name: 'model', value: 'm', op: '!=' }] }, /at least one "=" matcher/],
      [{ ...body, matchers: [{ name: 'a-b', value: 'x' }] }, /name must be/],
      [{ ...body, ends_at: 'tomorrow' }, /ends_at must be an ISO 8601 time/],
      [{ ...body, ends_at: '2026-12-02T11:00:00Z' }, /later than now/],
      [{ ...body, ends_at: '2028-12-02T11:00:00Z' }, /366 days/],
      [{ ...body, comment: ' ' }, /comment/],
      [{ ...body, until: 1 }, /unknown field "until"/],
    ];
    for (const [b, message] of cases) expect(fault(() => parseSilence(b, now))).toMatch(message);
  });
});

describe('alert state machine', () => {
  const t = (s: number) => new Date(Date.UTC(2026, 11, 2, 12, 0, s));
  const run = (seq: Array<[boolean, number, boolean?]>, forMs: number) => {
    let st: AlertStatus = INACTIVE;
    return seq.map(([h, at, silenced = false]) => {
      const r = step(st, h, t(at), forMs, silenced);
      st = r.next;
      return `${st.state}${r.notice ? `:${r.notice}` : ''}`;
    });
  };

  it('pending, firing after for_ms, repeats silent, resolved with a notice', () => {
    expect(run([[true, 0], [true, 9], [true, 10], [true, 11], [false, 12], [false, 13], [true, 14]], 10_000)).toEqual([
      'pending', 'pending', 'firing:firing', 'firing', 'resolved:resolved', 'resolved', 'pending',
    ]);
  });

  it('fires at once with for_ms 0; a pending alert that clears owes no notice', () => {
    expect(run([[true, 0], [false, 1]], 0)).toEqual(['firing:firing', 'resolved:resolved']);
    expect(run([[true, 0], [false, 1]], 5_000)).toEqual(['pending', 'inactive']);
  });

  it('holds notices back while silenced; fires late once the silence ends; no resolved notice for what was never announced', () => {
    expect(run([[true, 0, true], [true, 1, true], [true, 2], [true, 3], [false, 4]], 0)).toEqual(['firing', 'firing', 'firing:firing', 'firing', 'resolved:resolved']);
    expect(run([[true, 0, true], [false, 1]], 0)).toEqual(['firing', 'resolved']);
    expect(run([[true, 0], [false, 1, true]], 0)).toEqual(['firing:firing', 'resolved']);
  });
});
