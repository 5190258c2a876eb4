/**
 * Webhook delivery of alert notices: a bounded FIFO queue per URL, POSTed one at a time (so a
 * receiver hears "firing" before "resolved"), retried with exponential backoff on 5xx, 429 and
 * connection errors or timeouts, up to `maxAttempts`; other 4xx answers are final (the body or
 * the URL is wrong: sending it again would not help). `send` only queues: evaluation never waits
 * for a receiver. A full queue drops its oldest notice (counted, logged). URLs are secrets (Slack
 * puts its token in them): logs name a webhook by its position in SLUICE_ALERT_WEBHOOKS.
 */
import { errorFields, log } from '../../log.js';
import { webhookBody, type Notice, type NoticeChannel } from './notice.js';

export interface WebhookOptions {
  /** Attempts per notice, the first included. */
  maxAttempts?: number;
  /** Delay before the second attempt; doubles for each next one, up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** One attempt's limit (connect, send, answer). */
  timeoutMs?: number;
  /** Notices waiting per URL at most. */
  queueLimit?: number;
}

export interface WebhookStats {
  delivered: number;
  /** Given up on: a final 4xx, or every attempt failed. */
  failed: number;
  /** Pushed out of a full queue, or left queued at close. */
  dropped: number;
  attempts: number;
  retries: number;
}

interface Target {
  url: string;
  /** 1-based position in the configured list: what logs call it. */
  index: number;
  /** Notices waiting (not the one in flight). */
  queue: string[];
  busy: boolean;
}

/** A failure worth another attempt (5xx, 429, 408, no answer), and one that is not (other 4xx). */
class Retryable extends Error {}
class FinalAnswer extends Error {}

export class WebhookChannel implements NoticeChannel {
  readonly stats: WebhookStats = { delivered: 0, failed: 0, dropped: 0, attempts: 0, retries: 0 };
  private readonly targets: Target[];
  private readonly o: Required<WebhookOptions>;
  private closed = false;
  private readonly sleeping = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private readonly pumps = new Set<Promise<void>>();
  private idleWaiters: Array<() => void> = [];

  constructor(urls: readonly string[], opts: WebhookOptions = {}) {
    this.targets = urls.map((url, i) => ({ url, index: i + 1, queue: [], busy: false }));
    this.o = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 30_000, timeoutMs: 5_000, queueLimit: 1_000, ...opts };
  }

  send(n: Notice): void {
    this.postJson(webhookBody(n));
  }

  /** Queues any JSON body to every webhook, with the same retries (retraining requests use it). */
  postJson(json: Record<string, unknown>): void {
    if (this.closed || this.targets.length === 0) return;
    const body = JSON.stringify(json);
    for (const t of this.targets) {
      if (t.queue.length >= this.o.queueLimit) {
        t.queue.shift();
        this.stats.dropped++;
        log.warn('alerts: webhook queue full, oldest notice dropped', { webhook: t.index, queueLimit: this.o.queueLimit });
      }
      t.queue.push(body);
      if (!t.busy) this.pump(t);
    }
  }

  /** Resolves once every queue is empty and nothing is in flight (tests, shutdown). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: backoff waits end, what is in flight finishes (bounded by timeoutMs), the rest is dropped. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.sleeping) {
      clearTimeout(s.timer);
      s.wake();
    }
    await Promise.all(this.pumps);
    const left = this.targets.reduce((a, t) => a + t.queue.length, 0);
    for (const t of this.targets) t.queue.length = 0;
    if (left > 0) {
      this.stats.dropped += left;
      log.warn('alerts: webhook notices not delivered at shutdown', { notices: left });
    }
    this.settleIdle();
  }

  private isIdle(): boolean {
    return this.targets.every((t) => !t.busy && t.queue.length === 0);
  }

  private settleIdle(): void {
    if (!this.isIdle() && !this.closed) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  private pump(t: Target): void {
    t.busy = true;
    const p = (async () => {
      // The notice in flight leaves the queue first: a full queue drops only waiting ones.
      for (let body = t.queue.shift(); body !== undefined; body = this.closed ? undefined : t.queue.shift()) {
        if (!(await this.deliver(t, body))) {
          t.queue.unshift(body); // closed while waiting to retry: close() counts it
          break;
        }
      }
    })().catch((e: unknown) => log.error('alerts: webhook delivery failed', { webhook: t.index, ...errorFields(e) }))
      .finally(() => {
        t.busy = false;
        this.pumps.delete(p);
        this.settleIdle();
      });
    this.pumps.add(p);
  }

  /** Delivers or gives up on `body`: true; false when closed before either. */
  private async deliver(t: Target, body: string): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      this.stats.attempts++;
      try {
        await this.post(t.url, body);
        this.stats.delivered++;
        return true;
      } catch (e) {
        if (!(e instanceof Retryable) || attempt >= this.o.maxAttempts) {
          this.stats.failed++;
          log.warn('alerts: webhook gave up on a notice', { webhook: t.index, attempts: attempt, ...errorFields(e) });
          return true;
        }
        if (this.closed) return false;
        this.stats.retries++;
        await this.sleep(this.delay(attempt));
        if (this.closed) return false;
      }
    }
  }

  /** Backoff before attempt `attempt + 1`: base x 2^(attempt-1), capped, with jitter in [1/2, 1] so retries of many replicas spread. */
  private delay(attempt: number): number {
    const d = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** (attempt - 1));
    return d / 2 + Math.random() * (d / 2);
  }

  private async post(url: string, body: string): Promise<void> {
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(this.o.timeoutMs) });
    } catch (e) {
      // Refused, reset, DNS, timeout: the receiver may be back later. (Never the URL in the message.)
      throw new Retryable(`no answer: ${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name}`);
    }
    await res.arrayBuffer().catch(() => undefined); // frees the connection
    if (res.ok) return;
    if (res.status >= 500 || res.status === 429 || res.status === 408) throw new Retryable(`answered ${res.status}`);
    throw new FinalAnswer(`answered ${res.status}`);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = { timer: setTimeout(() => {
        this.sleeping.delete(s);
        resolve();
      }, ms), wake: resolve };
      s.timer.unref?.();
      this.sleeping.add(s);
    });
  }
}
