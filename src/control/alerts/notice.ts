/**
 * What an alert notice says, and where it goes: the log (always) and webhooks (webhook.ts).
 * The webhook body is Slack-compatible: `text` is the line a Slack incoming webhook shows, and
 * `attachments[0].fields` its structured fields; `status` and `alert` carry the same facts for
 * any other receiver (PagerDuty/Opsgenie bridges, a script).
 */
import { log } from '../../log.js';
import type { Labels, Operator, Severity } from './rules.js';

export interface Notice {
  status: 'firing' | 'resolved';
  rule: string;
  labels: Labels;
  severity: Severity;
  summary: string;
  source: string;
  operator: Operator;
  threshold: number;
  /** The value that made it fire or resolve (null: the source had none). */
  value: number | null;
  activeSince: Date | null;
  firedAt: Date | null;
  resolvedAt: Date | null;
  at: Date;
}

export interface NoticeChannel {
  /** Takes the notice and returns at once (delivery is the channel's business, never the caller's wait). */
  send(n: Notice): void;
}

const COLORS: Record<Severity, string> = { info: '#439fe0', warning: '#daa038', critical: '#d00000', emergency: '#7a0000' };

function labelText(labels: Labels): string {
  const e = Object.entries(labels);
  return e.length ? ` {${e.map(([k, v]) => `${k}=${v}`).join(', ')}}` : '';
}

/** The one line a person reads. */
export function noticeText(n: Notice): string {
  const value = n.value === null ? 'no value' : `${n.source} = ${n.value} (${n.operator} ${n.threshold})`;
  return n.status === 'firing'
    ? `[FIRING ${n.severity}] ${n.rule}${labelText(n.labels)}: ${n.summary} (${value})`
    : `[RESOLVED] ${n.rule}${labelText(n.labels)}: ${n.summary} (${value})`;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

/** The webhook's JSON body. */
export function webhookBody(n: Notice): Record<string, unknown> {
  const text = noticeText(n);
  return {
    text,
    status: n.status,
    alert: {
      rule: n.rule, labels: { ...n.labels }, severity: n.severity, summary: n.summary, source: n.source,
      operator: n.operator, threshold: n.threshold, value: n.value,
      active_since: iso(n.activeSince), fired_at: iso(n.firedAt), resolved_at: iso(n.resolvedAt), at: n.at.toISOString(),
    },
    attachments: [{
      fallback: text,
      color: n.status === 'resolved' ? '#2eb886' : COLORS[n.severity],
      fields: [
        { title: 'status', value: n.status, short: true },
        { title: 'severity', value: n.severity, short: true },
        { title: 'rule', value: n.rule, short: true },
        { title: 'value', value: n.value === null ? 'none' : String(n.value), short: true },
        ...Object.entries(n.labels).map(([k, v]) => ({ title: k, value: v, short: true })),
      ],
      ts: Math.floor(n.at.getTime() / 1000),
    }],
  };
}

/** Every notice as a log line: warn for info and warning alerts, error for critical and emergency ones. */
export const logChannel: NoticeChannel = {
  send(n) {
    const fields = { rule: n.rule, labels: n.labels, severity: n.severity, value: n.value, summary: n.summary };
    if (n.status === 'resolved') log.info('alert resolved', fields);
    else if (n.severity === 'critical' || n.severity === 'emergency') log.error('alert firing', fields);
    else log.warn('alert firing', fields);
  },
};
