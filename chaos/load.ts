/**
 * Load for the scenarios: the load-test harness's open-loop generator (loadtest/open-loop.ts),
 * run in the background, keeping every request's fate (when it was sent, status, error code)
 * so the scenario can count them inside and outside its fault window afterwards.
 */
import { runOpenLoop, type Outcome } from '../loadtest/open-loop.js';
import { summarise, type Summary } from '../loadtest/report.js';
import { buildTarget, type Target } from '../loadtest/target.js';

export interface LoadSpec {
  url: string;
  model: string;
  rate: number;
  durationS: number;
  connections?: number;
  /** Ready-made HTTP requests to cycle through (else built from the model's metadata). */
  requests?: Buffer[];
  headers?: Record<string, string>;
  /** Reopen closed connections (for faults that restart the server). Default true. */
  reconnect?: boolean;
  /** Keep the bodies of successful answers (to check what they say). */
  keepBodies?: boolean;
  /**
   * HTTP/1.1 pipelining. Off by default: Sluice closes a connection, answering nothing, when a
   * request arrives behind one still running on the pool (a defect outside these faults), and
   * most clients and load balancers do not pipeline. One request on the wire per connection,
   * timed from its scheduled send.
   */
  pipeline?: boolean;
}

export interface Answer {
  index: number;
  /** Due by the schedule at, in ChaosContext.now() milliseconds. */
  t: number;
  /**
   * Written to the socket at (same clock): later than `t` when the request waited on the client
   * behind an earlier answer (one request on the wire per connection); absent if never written.
   */
  written?: number;
  latencyMs: number;
  /** HTTP status; 0 = no answer (refused, reset, closed, or not answered in time). */
  status: number;
  /** The error body's `code` for non-2xx answers. */
  code?: string;
  retryAfter?: string;
  body?: Buffer;
}

export interface LoadResult {
  answers: Answer[];
  summary: Summary;
}

export interface LoadHandle {
  /** Requests answered so far (grows while the load runs). */
  answers: Answer[];
  done: Promise<LoadResult>;
}

export function ok(a: Answer): boolean {
  return a.status >= 200 && a.status < 300;
}

/** "503 OVERLOADED", "504 DEADLINE_EXCEEDED", "no answer". */
export function outcomeLabel(a: Answer): string {
  if (a.status === 0) return 'no answer';
  if (ok(a)) return `${a.status}`;
  return a.code ? `${a.status} ${a.code}` : `${a.status}`;
}

function toAnswer(o: Outcome, keepBodies: boolean): Answer {
  const a: Answer = { index: o.index, t: o.sentAtMs, latencyMs: o.latencyMs, status: o.status };
  if (o.writtenAtMs !== undefined) a.written = o.writtenAtMs;
  if (o.status !== 0 && (o.status < 200 || o.status >= 300)) {
    try {
      a.code = (JSON.parse(o.body!.toString('utf8')) as { code?: string }).code;
    } catch {
      a.code = 'unparsable body';
    }
    const m = /\r\nretry-after:\s*([^\r]*)/i.exec(o.head ?? '');
    if (m) a.retryAfter = m[1];
  } else if (keepBodies && o.body) {
    a.body = Buffer.from(o.body);
  }
  return a;
}

export function startLoad(spec: LoadSpec): LoadHandle {
  const answers: Answer[] = [];
  const done = (async () => {
    const target: Target = spec.requests
      ? { ...hostPort(spec.url), requests: spec.requests }
      : await buildTarget({ url: spec.url, model: spec.model, batch: 1, binary: false, headers: spec.headers });
    const result = await runOpenLoop(target, {
      rate: spec.rate,
      durationS: spec.durationS,
      connections: spec.connections ?? 16,
      reconnect: spec.reconnect ?? true,
      pipeline: spec.pipeline ?? false,
      onOutcome: (o) => answers.push(toAnswer(o, spec.keepBodies === true)),
    });
    return { answers, summary: summarise([result]) };
  })();
  return { answers, done };
}

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 80) };
}

export interface Window {
  name: string;
  /** [from, to) in ChaosContext.now() ms. */
  from: number;
  to: number;
}

export interface Tally {
  sent: number;
  ok: number;
  failed: number;
  /** Failures by outcomeLabel. */
  byCode: Record<string, number>;
}

/** Counts the answers whose request was sent in each window. */
export function tally(answers: Answer[], windows: Window[]): Record<string, Tally> {
  const out: Record<string, Tally> = {};
  for (const w of windows) out[w.name] = { sent: 0, ok: 0, failed: 0, byCode: {} };
  for (const a of answers) {
    const w = windows.find((x) => a.t >= x.from && a.t < x.to);
    if (!w) continue;
    const c = out[w.name]!;
    c.sent++;
    if (ok(a)) c.ok++;
    else {
      c.failed++;
      const k = outcomeLabel(a);
      c.byCode[k] = (c.byCode[k] ?? 0) + 1;
    }
  }
  return out;
}

export function describeTally(t: Tally): string {
  const codes = Object.entries(t.byCode).map(([k, v]) => `${k}: ${v}`).join(', ');
  return `sent ${t.sent}, ok ${t.ok}, failed ${t.failed}${codes ? ` (${codes})` : ''}`;
}

/** Figures for a windows tally, one line per window. */
export function tallyFigures(prefix: string, t: Record<string, Tally>): Record<string, string> {
  return Object.fromEntries(Object.entries(t).map(([k, v]) => [`${prefix} ${k}`, describeTally(v)]));
}

/** The p-th percentile (0-100) of some numbers (nearest rank); 0 for none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
