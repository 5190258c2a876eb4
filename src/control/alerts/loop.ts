/**
 * The alert loop: every `intervalMs`, whichever replica takes the alerts' PostgreSQL advisory
 * lock (transaction-scoped, pg_try_advisory_xact_lock, like the experiment loop) evaluates every
 * rule over every label set its Signals gives, moves each alert through its states (state.ts),
 * records the transitions and the new states, all in that one transaction; the others skip
 * the round. Notices go out only after the commit (a rolled-back round announces nothing), to
 * channels that queue them (the log, webhooks): evaluation never waits for a receiver.
 *
 * Deduplication is the alerts table itself: one row per rule and label set, and a firing alert
 * that keeps firing sends nothing more.
 */
import { Periodic } from '../periodic.js';
import { errorFields, log } from '../../log.js';
import type { Db, Queryable } from '../../registry/db.js';
import type { Notice, NoticeChannel } from './notice.js';
import { holds, type AlertRule, type Labels } from './rules.js';
import type { Signals } from './signals.js';
import { matches, type Silence } from './silences.js';
import { INACTIVE, step, type AlertState } from './state.js';
import { addEvent, alertKey, alertsByKey, allRules, listSilences, saveAlert, type AlertRecord } from './store.js';

/** A source that failed to answer this round (AlertLoop.read). */
const UNREAD = Symbol('unread');

/** Arbitrary constant naming "alert evaluation" among advisory locks (two-key form: this, 0). */
export const ALERT_LOCK = 0x51_1c_e0_a1;

export interface AlertLoopOptions {
  db: Db;
  signals: Signals;
  /** Where notices go (each queues and returns at once). */
  channels: NoticeChannel[];
  intervalMs: number;
}

/** What one round did. */
export interface RoundResult {
  /** Another replica held the lock: nothing was evaluated here. */
  skipped: boolean;
  /** Alerts whose state changed, as [rule, labels, from, to]. */
  transitions: Array<{ rule: string; labels: Labels; from: AlertState; to: AlertState }>;
  notices: Notice[];
}

export class AlertLoop {
  private readonly periodic: Periodic;

  constructor(private readonly o: AlertLoopOptions) {
    this.periodic = new Periodic(o.intervalMs, () => this.tick(), 'alerts: evaluation failed (retried next interval)');
  }

  start(): void {
    this.periodic.start();
  }

  async close(): Promise<void> {
    await this.periodic.close();
  }

  /** One round at `now` (tests pass their own clock). */
  async tick(now = new Date()): Promise<RoundResult> {
    const result = await this.o.db.transaction(async (tx): Promise<RoundResult> => {
      const [got] = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::int, 0) AS locked', [ALERT_LOCK]);
      if (!got?.locked) return { skipped: true, transitions: [], notices: [] };
      return this.evaluate(tx, now);
    });
    for (const n of result.notices) {
      for (const c of this.o.channels) {
        try {
          c.send(n);
        } catch (e) {
          log.warn('alerts: a notice channel failed', errorFields(e));
        }
      }
    }
    return result;
  }

  private async evaluate(tx: Queryable, now: Date): Promise<RoundResult> {
    const rules = await allRules(tx);
    const known = await alertsByKey(tx);
    const silences = await listSilences(tx, now, 'active');
    const out: RoundResult = { skipped: false, transitions: [], notices: [] };
    const seen = new Set<string>();
    for (const rule of rules) {
      for (const labels of await this.labelSets(rule)) {
        const key = alertKey(rule.name, labels);
        if (seen.has(key)) continue;
        seen.add(key);
        await this.evaluateOne(tx, rule, labels, known.get(key), silences, now, out);
      }
    }
    // Alerts whose rule or label set is gone (a Signals stopped covering a model): no data.
    for (const [key, a] of known) {
      if (seen.has(key) || (a.state !== 'pending' && a.state !== 'firing')) continue;
      const rule = rules.find((r) => r.name === a.rule);
      if (rule) await this.evaluateOne(tx, rule, a.labels, a, silences, now, out, true);
    }
    return out;
  }

  private async labelSets(rule: AlertRule): Promise<Labels[]> {
    try {
      return (await this.o.signals.expand?.(rule.source, rule.labels)) ?? [rule.labels];
    } catch (e) {
      log.warn('alerts: label sets not read', { rule: rule.name, source: rule.source, ...errorFields(e) });
      return [rule.labels];
    }
  }

  /**
   * The rule's value for `labels`: a number, null when the source has none (no requests yet: the
   * condition does not hold), or UNREAD when reading it failed. An alert does not move on a
   * figure that could not be read: taken as "no value", a failed read resolved a firing alert
   * and announced it resolved.
   */
  private async read(rule: AlertRule, labels: Labels): Promise<number | null | typeof UNREAD> {
    try {
      const v = await this.o.signals.read(rule.source, labels);
      return typeof v === 'number' && !Number.isNaN(v) ? v : null;
    } catch (e) {
      log.warn('alerts: source not read (the alert keeps its state this round)', { rule: rule.name, source: rule.source, ...errorFields(e) });
      return UNREAD;
    }
  }

  private async evaluateOne(tx: Queryable, rule: AlertRule, labels: Labels, prev: AlertRecord | undefined, silences: Silence[], now: Date, out: RoundResult, gone = false): Promise<void> {
    const value = gone ? null : await this.read(rule, labels);
    if (value === UNREAD) return;
    const condition = value !== null && holds(value, rule.operator, rule.threshold);
    // An alert never seen whose condition does not hold needs no row.
    if (!prev && !condition) return;
    const from = prev ?? INACTIVE;
    const matching = silences.filter((s) => matches(s, { rule: rule.name, severity: rule.severity, labels }));
    const s = step(from, condition, now, rule.forMs, matching.length > 0);
    const record: AlertRecord = { ...s.next, rule: rule.name, labels, severity: rule.severity, summary: rule.summary, value, evaluatedAt: now };
    await saveAlert(tx, record);
    if (s.changed) {
      await addEvent(tx, { rule: rule.name, labels, from: from.state, to: s.next.state, value, silencedBy: matching.map((m) => m.id), notified: s.notice !== null, at: now });
      out.transitions.push({ rule: rule.name, labels, from: from.state, to: s.next.state });
    }
    if (s.notice) {
      out.notices.push({
        status: s.notice, rule: rule.name, labels, severity: rule.severity, summary: rule.summary, source: rule.source,
        operator: rule.operator, threshold: rule.threshold, value, activeSince: s.next.activeSince ?? from.activeSince,
        firedAt: s.next.firedAt, resolvedAt: s.next.resolvedAt, at: now,
      });
    }
  }
}
