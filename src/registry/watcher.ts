/**
 * Follows the registry's production versions so a replica can serve them: LISTEN on
 * `sluice_registry` for prompt news (every production change NOTIFYs in its own transaction),
 * plus a full reconcile every `reconcileMs` and after every (re)connection of the LISTEN
 * connection, as the safety net for notifications missed while disconnected.
 *
 * It calls `onChange(model, version)` whenever a model's production version differs from the one
 * it last reported (so each model's current version is reported once at start). Checks run one
 * at a time, each reading the database after the previous one finished, so what it reports
 * converges to the latest committed state and never goes back to an older one. A notification's
 * payload only says which model to re-read: the database is the truth.
 *
 * When the database goes away, checks fail quietly (logged once) and the last reported state
 * stands; the LISTEN connection reconnects by itself and the reconcile that follows catches up.
 * If `onChange` rejects (e.g. the engine could not load the version), the model is marked
 * unreported, so the next reconcile offers that version again.
 */
import { errorFields, log } from '../log.js';
import type { Db } from './db.js';
import { productionVersion, productionVersions } from './queries.js';
import { REGISTRY_CHANNEL } from './types.js';

export type ChangeListener = (model: string, version: string) => void | Promise<void>;

export interface WatcherOptions {
  /** Full reconcile period (config.reconcileMs). */
  reconcileMs: number;
}

export class RegistryWatcher {
  private readonly reported = new Map<string, string>();
  private readonly listeners = new Set<ChangeListener>();
  private unlisten: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  /** Work waiting for the check loop: a full reconcile and/or single models. */
  private fullPending = false;
  private readonly dirty = new Set<string>();
  private loop: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly db: Db, private readonly opts: WatcherOptions) {}

  /** Adds a listener; returns the function that removes it. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The production versions last reported, by model. */
  get state(): ReadonlyMap<string, string> {
    return this.reported;
  }

  /**
   * Starts listening and reconciling. Resolves after the first full reconcile was attempted;
   * it does not throw when the database is down (the watcher keeps trying).
   */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unlisten = await this.db.listen(REGISTRY_CHANNEL, {
      onNotify: (payload) => this.onNotify(payload),
      onListening: () => this.schedule(undefined),
    });
    this.timer = setInterval(() => this.schedule(undefined), this.opts.reconcileMs);
    this.timer.unref();
    this.schedule(undefined);
    await this.idle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.unlisten?.().catch(() => undefined);
    await this.loop;
  }

  /** Resolves when no check is queued or running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /** Re-reads everything now (e.g. after an admin action on this replica). */
  reconcile(): Promise<void> {
    this.schedule(undefined);
    return this.idle();
  }

  private onNotify(payload: string): void {
    let model: unknown;
    try {
      model = (JSON.parse(payload) as { model?: unknown }).model;
    } catch {
      model = undefined;
    }
    // An unreadable payload still means "something changed": read everything.
    this.schedule(typeof model === 'string' ? model : undefined);
  }

  /** Queues a check of one model (or all); the loop coalesces what piles up while it runs. */
  private schedule(model: string | undefined): void {
    if (this.stopped) return;
    if (model === undefined) this.fullPending = true;
    else this.dirty.add(model);
    this.loop ??= this.drain().finally(() => {
      this.loop = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && (this.fullPending || this.dirty.size > 0)) {
      try {
        if (this.fullPending) {
          this.fullPending = false;
          this.dirty.clear(); // a full read covers them
          this.applyAll(await productionVersions(this.db));
        } else {
          const model = this.dirty.values().next().value as string;
          this.dirty.delete(model);
          const version = await productionVersion(this.db, model);
          if (version !== undefined) this.apply(model, version);
        }
        if (this.failing) log.info('registry watcher: database reachable again');
        this.failing = false;
      } catch (e) {
        if (!this.failing) log.warn('registry watcher: cannot read the registry; serving the last known versions', errorFields(e));
        this.failing = true;
        this.fullPending = true;
        // Retried by the next reconcile tick or LISTEN reconnection; do not spin here.
        return;
      }
    }
  }

  private applyAll(current: Map<string, string>): void {
    for (const [model, version] of current) this.apply(model, version);
  }

  private apply(model: string, version: string): void {
    if (this.reported.get(model) === version) return;
    this.reported.set(model, version);
    for (const listener of this.listeners) {
      let result: void | Promise<void>;
      try {
        result = listener(model, version);
      } catch (e) {
        this.failed(model, version, e);
        continue;
      }
      if (result instanceof Promise) result.catch((e: unknown) => this.failed(model, version, e));
    }
  }

  private failed(model: string, version: string, e: unknown): void {
    log.warn('registry watcher: a listener failed on a production change; will offer it again', { model, version, ...errorFields(e) });
    // Forget it only if nothing newer was reported meanwhile.
    if (this.reported.get(model) === version) this.reported.delete(model);
  }
}
