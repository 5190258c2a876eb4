/**
 * Retraining triggers (issue #15): a request to retrain a model is recorded (store.ts) and sent
 * to the retraining webhook (SLUICE_RETRAIN_WEBHOOK: a JSON POST with retries and backoff, the
 * alerts' webhook queue) when
 *   - an operator asks (POST /v1/admin/models/{m}/retrain: trigger `manual`);
 *   - a model's schedule is due (PUT /v1/admin/models/{m}/retrain/schedule {"every_s"}: `schedule`,
 *     checked every interval by whichever replica locks the due rows first);
 *   - an alert fires on a model's serving figures (`performance`: the sources error_rate and
 *     latency_p99_over_slo) or on drift (`drift`: drift_detected): the trigger is an alert
 *     notice channel, so it follows the alert rules, their for-durations and silences.
 * Automatic triggers do not repeat for a model within SLUICE_RETRAIN_COOLDOWN_MS.
 */
import { Periodic } from '../periodic.js';
import { errorFields, log } from '../../log.js';
import type { Db } from '../../registry/db.js';
import type { Notice, NoticeChannel } from '../alerts/notice.js';
import type { WebhookChannel } from '../alerts/webhook.js';
import { fireDueSchedules, recordRequest, requestJson, type NewRequest, type RetrainingRequest, type Trigger } from './store.js';

export const RETRAINING_ACTOR = 'sluice-retraining';

/** Alert sources that ask for retraining, and as what. */
const ALERT_TRIGGERS: Record<string, Trigger> = { error_rate: 'performance', latency_p99_over_slo: 'performance', drift_detected: 'drift' };

export interface RetrainingOptions {
  db: Db;
  webhook?: Pick<WebhookChannel, 'postJson'>;
  cooldownMs: number;
  intervalMs: number;
}

export class Retraining {
  private readonly periodic: Periodic;
  /** Alert-triggered requests in flight (tests and shutdown wait for them). */
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly o: RetrainingOptions) {
    this.periodic = new Periodic(o.intervalMs, () => this.tick(), 'retraining: schedules not checked (retried next interval)');
  }

  /** Records `r` and sends it; undefined when the cooldown held an automatic one back. */
  async request(r: NewRequest): Promise<RetrainingRequest | undefined> {
    const out = await recordRequest(this.o.db, r, this.o.cooldownMs);
    if (out) this.announce(out);
    return out;
  }

  private announce(r: RetrainingRequest): void {
    log.info('retraining: requested', { model: r.model, version: r.version, trigger: r.trigger, reason: r.reason, id: r.id });
    this.o.webhook?.postJson({ text: `Retraining requested for ${r.model}${r.version ? ` ${r.version}` : ''} (${r.trigger}): ${r.reason}`, retraining_request: requestJson(r) });
  }

  /** An alert notice channel: a firing alert on a model's serving figures or drift asks for retraining. */
  readonly alertChannel: NoticeChannel = {
    send: (n: Notice) => {
      const trigger = ALERT_TRIGGERS[n.source];
      const model = n.labels.model;
      if (n.status !== 'firing' || trigger === undefined || model === undefined) return;
      const p = this.request({
        model, ...(n.labels.version !== undefined ? { version: n.labels.version } : {}), trigger, actor: RETRAINING_ACTOR,
        reason: `alert ${n.rule} fired: ${n.source} ${n.operator} ${n.threshold} (value ${n.value ?? 'none'})`,
        details: { alert: n.rule, source: n.source, value: n.value, threshold: n.threshold, labels: n.labels, severity: n.severity },
      }).catch((e) => log.warn('retraining: request from an alert not recorded', { model, ...errorFields(e) }));
      this.pending.add(p);
      void p.finally(() => this.pending.delete(p));
    },
  };

  /** Fires due schedules now (the loop does it every interval). */
  async tick(): Promise<RetrainingRequest[]> {
    const fired = await fireDueSchedules(this.o.db, RETRAINING_ACTOR);
    for (const r of fired) this.announce(r);
    return fired;
  }

  /** Resolves once the alert-triggered requests under way are recorded. */
  async settled(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  start(): void {
    this.periodic.start();
  }

  async close(): Promise<void> {
    await this.periodic.close();
    await this.settled();
  }
}
