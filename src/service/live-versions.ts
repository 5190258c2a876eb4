/**
 * The control plane's record of every loaded model: its live versions, the default one and the
 * route in force, and the changes to them (load, unload, a new default, a route), each
 * published to every I/O thread's plane (PlaneLink) the way engine.ts describes: prepared off the
 * hot path, then one atomic store in the model table. Changes to one model run one at a time
 * (a chain per model); different models change concurrently.
 */
import type { VersionSource } from '../repository/directory.js';
import type { ModelCatalog } from './catalog.js';
import { SluiceError } from '../errors.js';
import { log } from '../log.js';
import type { ModelTable } from '../dispatch/model-table.js';
import { NO_GENERATION } from '../dispatch/model-table.js';
import { modelNotFound, type VersionSpec } from './plane-types.js';
import { checkName } from '../names.js';
import type { PublishedRoute } from '../routing/plane-route.js';
import { routeVersions, type RouteSpec } from '../routing/route.js';
import { shadowReport } from '../routing/shadow.js';
import type { RouteBandits } from '../routing/route-bandit.js';
import type { PlaneLink } from './plane-link.js';
import type { VersionResources } from './version-resources.js';

export interface LoadOptions {
  /** Version to load; the latest in the repository when omitted. */
  version?: string;
  /**
   * Make it the default version, the one unversioned requests get when no route is in force
   * (default true: a swap). False: a live version beside the others, reached by name or by a
   * route.
   */
  asDefault?: boolean;
}

/** The control plane's view of one model: its live versions, default and route. */
interface ModelState {
  /** Live versions by version string -> generation. */
  live: Map<string, number>;
  /** Versions loaded on purpose beside the default (kept when the default moves on). */
  pinned: Set<string>;
  defaultGen?: number;
  route?: PublishedRoute;
}

/** What the lifecycle works with, all owned by the engine. */
export interface LiveVersionsDeps {
  table: ModelTable;
  /** Every I/O thread's plane (the engine adds them before anything loads). */
  links: readonly PlaneLink[];
  resources: VersionResources;
  catalog: ModelCatalog;
  routeBandits: RouteBandits;
}

export class LiveVersions {
  /** Loaded models (activated and not unloaded): live versions, default, route. */
  private readonly models = new Map<string, ModelState>();
  /** Per-model chain that serialises the changes to the same model. */
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Models with a load under way. */
  readonly loading = new Set<string>();
  /** Why a model's last load as the default failed (cleared when one succeeds). */
  readonly failed = new Map<string, string>();
  /** Set once the engine closes (close()): no change starts after it. */
  private closing = false;

  constructor(private readonly d: LiveVersionsDeps) {}

  /** Whether nothing is loaded nor loading (I/O threads may still attach). */
  get empty(): boolean {
    return this.models.size === 0 && this.loading.size === 0;
  }

  /** Refuses every change from now on (SHUTTING_DOWN); false if it was already closed. */
  close(): boolean {
    if (this.closing) return false;
    this.closing = true;
    return true;
  }

  private checkOpen(): void {
    if (this.closing) throw new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
  }

  private serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(name, tail);
    void tail.then(() => {
      if (this.locks.get(name) === tail) this.locks.delete(name);
    });
    return next;
  }

  /** Loads a version from the catalog and makes it the active one. */
  async load(name: string, opts: LoadOptions = {}): Promise<string> {
    // Before the catalog: a name becomes a directory path or a database parameter there.
    checkName(name, 'model name');
    if (opts.version !== undefined) checkName(opts.version, 'version');
    const source = await this.d.catalog.open(name, opts.version);
    return this.loadVersion(source, opts);
  }

  /**
   * Loads a version from any source, warms and smoke-tests it on every plane, then activates
   * it with one atomic store and retires the previous version. If anything fails before
   * activation, the serving version is untouched. Returns the activated version.
   */
  loadVersion(source: VersionSource, opts: { asDefault?: boolean } = {}): Promise<string> {
    return this.serial(source.manifest.name, () => this.loadNow(source, opts.asDefault ?? true));
  }

  /** loadVersion inside the model's serial chain. */
  private async loadNow(source: VersionSource, asDefault: boolean): Promise<string> {
    const name = source.manifest.name;
    this.checkOpen();
    this.loading.add(name);
    try {
      const spec = await this.d.resources.prepare(source);
      await this.activate(spec, asDefault);
      this.failed.delete(name);
      log.info(asDefault ? 'engine: version active' : 'engine: version live', { model: name, version: spec.manifest.version, dispatch: spec.dispatch, gen: spec.gen });
      return spec.manifest.version;
    } catch (e) {
      if (asDefault) this.failed.set(name, e instanceof SluiceError ? e.message : 'load failed');
      throw e;
    } finally {
      this.loading.delete(name);
    }
  }

  /** Whether the model is loaded here. */
  hasModel(name: string): boolean {
    return this.models.has(name);
  }

  /** Whether `version` is the model's default version here (what unversioned requests get without a route). */
  isDefault(name: string, version: string): boolean {
    const st = this.models.get(name);
    return st?.defaultGen !== undefined && st.live.get(version) === st.defaultGen;
  }

  /**
   * Loads the versions not yet live, as live versions beside the default (a route about to name
   * them); rejects with the first version's error, the versions already loaded staying live.
   */
  prepareVersions(name: string, versions: string[]): Promise<void> {
    checkName(name, 'model name');
    for (const v of versions) checkName(v, 'version');
    return this.serial(name, async () => {
      const st = this.models.get(name);
      if (!st) throw modelNotFound(name);
      for (const v of versions) {
        if (st.live.has(v)) continue;
        await this.loadNow(await this.d.catalog.open(name, v), false);
      }
    });
  }

  /** Every live version of every loaded model (what the performance reporter writes rows for). */
  servedVersions(): Array<{ model: string; version: string }> {
    return [...this.models].flatMap(([model, st]) => [...st.live.keys()].map((version) => ({ model, version })));
  }

  /** The versions of a model serving by name, and which is the default (for operators and tests). */
  liveVersions(name: string): { versions: string[]; default?: string; route?: PublishedRoute } {
    const st = this.models.get(name);
    if (!st) throw modelNotFound(name);
    const byGen = new Map([...st.live].map(([v, g]) => [g, v]));
    return { versions: [...st.live.keys()], default: st.defaultGen === undefined ? undefined : byGen.get(st.defaultGen), route: st.route };
  }

  /**
   * Makes an installed version live. As the default, the hot swap: one atomic store, then every
   * plane names the new version and retires what it replaced, unless a route or an operator
   * keeps that live.
   */
  private async activate(spec: VersionSpec, asDefault: boolean): Promise<void> {
    const name = spec.manifest.name;
    const version = spec.manifest.version;
    let st = this.models.get(name);
    if (!st) {
      st = { live: new Map(), pinned: new Set() };
      this.models.set(name, st);
    }
    const retire: number[] = [];
    const same = st.live.get(version);
    if (same !== undefined) retire.push(same);
    const previousDefault = st.defaultGen;
    if (asDefault) {
      if (previousDefault !== undefined && previousDefault !== same) {
        const old = [...st.live].find(([, g]) => g === previousDefault)?.[0];
        const kept = old !== undefined && (st.pinned.has(old) || (st.route !== undefined && routeVersions(st.route).includes(old)));
        if (old !== undefined && !kept) {
          retire.push(previousDefault);
          st.live.delete(old);
        }
      }
      this.d.table.activate(spec.tableSlot, spec.gen);
      st.defaultGen = spec.gen;
    } else {
      st.pinned.add(version);
      if (same !== undefined && same === st.defaultGen) {
        // Reloading the default version as a live one keeps it the default.
        this.d.table.activate(spec.tableSlot, spec.gen);
        st.defaultGen = spec.gen;
      }
    }
    st.live.set(version, spec.gen);
    await Promise.all(this.d.links.map((l) => l.activate(name, spec.gen, { asDefault, previousDefault, retire })));
  }

  /**
   * Per shadow version of the model: requests mirrored and dropped, errors, answers agreeing
   * with the caller's, output differences, and latency beside the caller's, over every thread.
   */
  async shadowReport(name: string): Promise<{ model: string; route_generation: number; shadows: Array<Record<string, unknown>> }> {
    const st = this.models.get(name);
    if (!st) throw modelNotFound(name);
    const snaps = (await Promise.all(this.d.links.map((l) => l.shadowSnapshots(name)))).flat();
    return { model: name, route_generation: st.route?.gen ?? 0, shadows: shadowReport(snaps) };
  }

  /**
   * Stops serving a model (every version: new requests get MODEL_NOT_FOUND, running ones
   * finish), or only one live version of it: not the default, nor one the route in force names
   * (VERSION_IN_USE), the others untouched.
   */
  unload(name: string, opts: { version?: string } = {}): Promise<void> {
    checkName(name, 'model name');
    if (opts.version !== undefined) checkName(opts.version, 'version');
    return this.serial(name, async () => {
      const st = this.models.get(name);
      if (!st) throw modelNotFound(name);
      if (opts.version !== undefined) {
        const v = opts.version;
        const gen = st.live.get(v);
        if (gen === undefined) throw new SluiceError('VERSION_NOT_FOUND', `model ${name} has no loaded version ${v}`);
        if (gen === st.defaultGen) throw new SluiceError('VERSION_IN_USE', `version ${v} is model ${name}'s default version: make another the default, or unload the model`);
        if (st.route && routeVersions(st.route).includes(v)) throw new SluiceError('VERSION_IN_USE', `version ${v} of model ${name} is named by its route: change the route first`);
        st.live.delete(v);
        st.pinned.delete(v);
        await Promise.all(this.d.links.map((l) => l.retireVersions(name, [gen])));
        log.info('engine: version unloaded', { model: name, version: v });
        return;
      }
      this.d.table.deactivate(this.d.table.slotOf(name));
      this.models.delete(name);
      this.d.routeBandits.stop(name);
      await Promise.all(this.d.links.map((l) => l.unload(name)));
      log.info('engine: model unloaded', { model: name });
    });
  }

  /**
   * Puts a route in force for a model's unversioned requests (undefined: none, the default
   * version answers). Every version it names is loaded first, as a live version, from the
   * catalog; if one fails, the route in force stays untouched. Then each plane installs the
   * route and one atomic store of its generation switches every thread: no request sees half
   * of a route. Returns the route's generation (0 when cleared). `registryGen`: the route's
   * generation in the registry, which its decisions record (PublishedRoute).
   */
  setRoute(name: string, spec: RouteSpec | undefined, registryGen?: number): Promise<number> {
    checkName(name, 'model name');
    return this.serial(name, async () => {
      this.checkOpen();
      const st = this.models.get(name);
      if (!st) throw modelNotFound(name);
      const slot = this.d.table.slotOf(name);
      if (spec === undefined) {
        this.d.table.setRoute(slot, NO_GENERATION);
        st.route = undefined;
        this.d.routeBandits.stop(name);
        await Promise.all(this.d.links.map((l) => l.routeStored(name, NO_GENERATION)));
        log.info('engine: route cleared', { model: name });
        return NO_GENERATION;
      }
      for (const v of routeVersions(spec)) {
        if (st.live.has(v)) continue;
        await this.loadNow(await this.d.catalog.open(name, v), false);
      }
      const gen = this.d.table.newGeneration();
      const route: PublishedRoute = { ...spec, gen, ...(registryGen !== undefined ? { registryGen } : {}), ...(spec.assignment === 'bandit' ? { weights: this.d.routeBandits.start(name, spec, gen) } : {}) };
      if (spec.assignment !== 'bandit') this.d.routeBandits.stop(name);
      await Promise.all(this.d.links.map((l) => l.installRoute(name, route)));
      this.d.table.setRoute(slot, route.gen);
      st.route = route;
      await Promise.all(this.d.links.map((l) => l.routeStored(name, route.gen)));
      log.info('engine: route in force', { model: name, gen: route.gen, variants: spec.variants.map((v) => `${v.name}=${v.version}:${v.weight}`) });
      return route.gen;
    });
  }
}
