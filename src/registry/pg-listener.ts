/**
 * LISTEN on PostgreSQL needs one connection held open (a pooled one may be handed to someone
 * else). This keeps that connection: it reconnects with backoff whenever it drops (server
 * restart, network loss, a failed health check), LISTENs again on every channel, and tells each
 * subscriber through `onListening` so it can re-read what it may have missed meanwhile.
 */
import pg from 'pg';
import { errorFields, log } from '../log.js';
import { checkChannel, type ListenHandlers } from './db.js';

export interface ListenerOptions {
  /** How often the held connection is checked with `SELECT 1` (a silent network drop). */
  healthMs: number;
  /** First reconnect delay; doubles per failure up to maxBackoffMs. */
  minBackoffMs: number;
  maxBackoffMs: number;
}

export class PgListener {
  private client: pg.Client | undefined;
  /** Channels LISTENed on the current connection. */
  private listening = new Set<string>();
  private readonly subs = new Map<string, Set<ListenHandlers>>();
  private connecting: Promise<boolean> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private closed = false;
  private downSince: number | undefined;

  constructor(private readonly clientConfig: pg.ClientConfig, private readonly opts: ListenerOptions) {
    this.backoffMs = opts.minBackoffMs;
  }

  /** Adds a subscriber; resolves after the first attempt to have the channel LISTENed. */
  async subscribe(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    checkChannel(channel);
    if (this.closed) throw new Error('listener is closed');
    let set = this.subs.get(channel);
    if (!set) this.subs.set(channel, (set = new Set()));
    set.add(handlers);
    if (this.client) {
      // Already connected: LISTEN this channel if it is new, and this subscriber is live now.
      if (await this.listenOn(this.client, channel)) handlers.onListening?.();
    } else {
      // connect() LISTENs every subscribed channel and calls onListening itself; a channel added
      // while it was half-way is LISTENed here.
      await this.ensureConnected();
      if (this.client && !this.listening.has(channel) && (await this.listenOn(this.client, channel))) handlers.onListening?.();
    }
    return async () => {
      set.delete(handlers);
      if (set.size > 0) return;
      this.subs.delete(channel);
      if (this.client && this.listening.delete(channel)) await this.client.query(`UNLISTEN ${channel}`).catch(() => undefined);
    };
  }

  private async listenOn(client: pg.Client, channel: string): Promise<boolean> {
    if (this.listening.has(channel)) return true;
    try {
      await client.query(`LISTEN ${channel}`); // a checked identifier: LISTEN takes no parameters
      this.listening.add(channel);
      return true;
    } catch (e) {
      this.lost(client, e);
      return false;
    }
  }

  private async ensureConnected(): Promise<void> {
    if (this.client || this.closed) return;
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => {
        this.connecting = undefined;
      });
    }
    const ok = await this.connecting;
    if (!ok) this.scheduleReconnect();
  }

  private async connect(): Promise<boolean> {
    const client = new pg.Client(this.clientConfig);
    // Until it is ours, errors only fail the attempt below.
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client));
    client.on('notification', (n) => {
      if (client !== this.client) return;
      for (const h of this.subs.get(n.channel) ?? []) {
        try {
          h.onNotify(n.payload ?? '');
        } catch (e) {
          log.error('registry: notification handler failed', errorFields(e));
        }
      }
    });
    const listening = new Set<string>();
    try {
      await client.connect();
      for (const channel of this.subs.keys()) {
        await client.query(`LISTEN ${channel}`);
        listening.add(channel);
      }
    } catch (e) {
      if (this.downSince === undefined) {
        this.downSince = Date.now();
        log.warn('registry: cannot LISTEN, will keep retrying', errorFields(e));
      }
      client.removeAllListeners('end');
      client.end().catch(() => undefined);
      return false;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return false;
    }
    if (this.downSince !== undefined) log.info('registry: LISTEN connection back', { downMs: Date.now() - this.downSince });
    this.downSince = undefined;
    this.client = client;
    this.listening = listening;
    this.backoffMs = this.opts.minBackoffMs;
    this.startHealthChecks(client);
    for (const channel of listening) {
      for (const h of this.subs.get(channel) ?? []) {
        try {
          h.onListening?.();
        } catch (e) {
          log.error('registry: onListening handler failed', errorFields(e));
        }
      }
    }
    return true;
  }

  private startHealthChecks(client: pg.Client): void {
    clearInterval(this.healthTimer);
    let busy = false;
    this.healthTimer = setInterval(() => {
      if (busy || client !== this.client) return;
      busy = true;
      client.query('SELECT 1').then(
        () => { busy = false; },
        (e: unknown) => { busy = false; this.lost(client, e); },
      );
    }, this.opts.healthMs);
    this.healthTimer.unref();
  }

  /** The held connection failed: drop it and reconnect (only once per connection). */
  private lost(client: pg.Client, e?: unknown): void {
    if (client !== this.client) return;
    this.client = undefined;
    this.listening = new Set();
    clearInterval(this.healthTimer);
    this.downSince = Date.now();
    log.warn('registry: LISTEN connection lost, reconnecting', e === undefined ? {} : errorFields(e));
    client.removeAllListeners('end');
    client.end().catch(() => undefined);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer || this.client) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.opts.maxBackoffMs, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.ensureConnected();
    }, delay);
    this.retryTimer.unref();
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.healthTimer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
    await this.connecting?.catch(() => undefined);
  }
}
