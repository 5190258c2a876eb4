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
 *
 * Routes follow the same rules through `onRouteChange(model, route | undefined, generation)`:
 * each model's route in force is reported once at start, every change of its generation after
 * (undefined once it is cleared), a rejected change is offered again by the next reconcile.
 * A route NOTIFY carries `{model, route: generation}`; a production one `{model, version}`.
 */
import { errorFields, log } from '../log.js';
import type { Db } from './db.js';
import { productionVersion, productionVersions } from './queries.js';
import { routeState, routeStates, type RouteState } from './routes.js';
import { REGISTRY_CHANNEL } from './types.js';
import type { RouteSpec } from '../routing/route.js';

export type ChangeListener = (model: string, version: string) => void | Promise<void>;
/** A model's route changed: the route in force (undefined: none, serve production) and its generation. */
export type RouteListener = (model: string, route: RouteSpec | undefined, generation: number) => void | Promise<void>;

/** The last route generation offered for a model, whether it was a clear, and whether every listener took it. */
interface RouteReport {
  generation: number;
  cleared: boolean;
  ok: boolean;
}

export interface WatcherOptions {
  /** Full reconcile period (config.reconcileMs). */
  reconcileMs: number;
}

export class RegistryWatcher {
  private readonly reported = new Map<string, string>();
  private readonly listeners = new Set<ChangeListener>();
  private readonly routeReports = new Map<string, RouteReport>();
  private readonly routeListeners = new Set<RouteListener>();
  private unlisten: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  /** Work waiting for the check loop: a full reconcile and/or single models. */
  private fullPending = false;
  private readonly dirty = new Set<string>();
  private readonly dirtyRoutes = new Set<string>();
  private loop: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly db: Db, private readonly opts: WatcherOptions) {}

  /** Adds a listener; returns the function that removes it. */
  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Adds a route listener; returns the function that removes it. Routes are read from the next
   * check on (a listener added after start hears every route in force at the next reconcile).
   */
  onRouteChange(listener: RouteListener): () => void {
    this.routeListeners.add(listener);
    return () => this.routeListeners.delete(listener);
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
    let notice: { model?: unknown; route?: unknown } | undefined;
    try {
      notice = JSON.parse(payload) as typeof notice;
    } catch {
      notice = undefined;
    }
    const model = notice?.model;
    // An unreadable payload still means "something changed": read everything.
    if (typeof model !== 'string') return this.schedule(undefined);
    this.schedule(model, notice!.route !== undefined ? 'route' : 'production');
  }

  /** Queues a check of one model's production version or route (or of everything); the loop coalesces what piles up while it runs. */
  private schedule(model: string | undefined, what: 'production' | 'route' = 'production'): void {
    if (this.stopped) return;
    if (model === undefined) this.fullPending = true;
    else (what === 'route' ? this.dirtyRoutes : this.dirty).add(model);
    this.loop ??= this.drain().finally(() => {
      this.loop = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (!this.stopped && (this.fullPending || this.dirty.size > 0 || this.dirtyRoutes.size > 0)) {
      try {
        if (this.fullPending) {
          this.fullPending = false;
          // A full read covers them.
          this.dirty.clear();
          this.dirtyRoutes.clear();
          this.applyAll(await productionVersions(this.db));
          if (this.routeListeners.size > 0) this.applyAllRoutes(await routeStates(this.db));
        } else if (this.dirty.size > 0) {
          const model = this.dirty.values().next().value as string;
          this.dirty.delete(model);
          const version = await productionVersion(this.db, model);
          if (version !== undefined) this.apply(model, version);
        } else {
          const model = this.dirtyRoutes.values().next().value as string;
          this.dirtyRoutes.delete(model);
          if (this.routeListeners.size > 0) {
            const state = await routeState(this.db, model);
            if (state) this.applyRoute(model, state);
          }
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

  /**
   * Routes of a full read: every model whose generation differs from the one last offered, and
   * models that vanished from the read (a row deleted or edited by hand into something that no
   * longer parses: the registry itself keeps cleared rows) reported as cleared, the safe default.
   */
  private applyAllRoutes(current: Map<string, RouteState>): void {
    for (const [model, state] of current) this.applyRoute(model, state);
    for (const [model, report] of this.routeReports) {
      if (!current.has(model)) this.applyRoute(model, { spec: undefined, generation: report.generation });
    }
  }

  private applyRoute(model: string, state: Pick<RouteState, 'spec' | 'generation'>): void {
    const report = this.routeReports.get(model);
    const cleared = state.spec === undefined;
    if (report && report.ok && report.generation === state.generation && report.cleared === cleared) return;
    // Nothing was ever offered for this model and it has no route: the listeners' default.
    if (!report && cleared) return;
    this.routeReports.set(model, { generation: state.generation, cleared, ok: true });
    for (const listener of this.routeListeners) {
      let result: void | Promise<void>;
      try {
        result = listener(model, state.spec, state.generation);
      } catch (e) {
        this.routeFailed(model, state.generation, e);
        continue;
      }
      if (result instanceof Promise) result.catch((e: unknown) => this.routeFailed(model, state.generation, e));
    }
  }

  private routeFailed(model: string, generation: number, e: unknown): void {
    log.warn('registry watcher: a listener failed on a route change; will offer it again', { model, generation, ...errorFields(e) });
    // Kept (not forgotten, unlike a failed production version): a clear that follows a route
    // the engine never took must still be offered, since nothing else would report it.
    const report = this.routeReports.get(model);
    if (report?.generation === generation) report.ok = false;
  }

  /** The route generation last offered, by model (whether or not every listener took it). */
  get routeGenerations(): ReadonlyMap<string, number> {
    return new Map([...this.routeReports].map(([m, r]) => [m, r.generation]));
  }
}
