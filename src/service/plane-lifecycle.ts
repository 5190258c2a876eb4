/**
 * The version events of one I/O thread's data plane (src/service/data-plane.ts), as the control
 * plane sends them: install (build this thread's copy, not yet reachable), activate (after the
 * control plane's atomic store of the new generation: the version names follow, what it
 * replaced retires or stays as a fallback standby), retire, unload, and free (once this thread's
 * last request on a retired version ends; `onReleased` tells the control plane, which frees the
 * pool's copy and arena slots once every thread has released it). Apart from the request path so
 * that each file stays readable; both run on the same thread over the same `models` map.
 */
import { SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Config } from '../config/index.js';
import type { DispatchMode } from '../model/manifest.js';
import type { Metrics } from '../metrics/version-metrics.js';
import { Batcher } from '../dispatch/batcher.js';
import { slotLayout } from '../dispatch/slot-layout.js';
import { loadRuntime, validateRuntime, type SharedRuntime } from '../worker/runtimes/index.js';
import type { Admission } from './admission.js';
import type { ActivateOptions, Dispatcher, VersionSpec } from './plane-types.js';
import { VersionGuard } from './resilience/guard.js';
import type { PlaneRouting } from './plane-routing.js';
import type { LoadedVersion, ModelEntry } from './plane-versions.js';

/** What the lifecycle needs of its data plane. */
export interface LifecycleHost {
  readonly thread: number;
  readonly config: Readonly<Config>;
  readonly metrics: Metrics;
  readonly admission: Admission;
  readonly models: Map<string, ModelEntry>;
  readonly arena: SharedArrayBuffer | undefined;
  readonly dispatcher: Dispatcher | undefined;
  readonly routing: PlaneRouting;
  closing(): boolean;
  onReleased(gen: number): void;
}

export class PlaneLifecycle {
  constructor(private readonly h: LifecycleHost) {}

  /**
   * Builds this thread's copy of a version (inline runtime, warmed and smoke-tested, or a
   * batcher over this thread's arena slots) and makes it findable by its generation, which
   * no request reads until the control plane stores it in the table.
   */
  async install(spec: VersionSpec): Promise<void> {
    if (this.h.closing()) throw new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
    const m = spec.manifest;
    const metrics = this.h.metrics.of(m.name, m.version);
    const v: LoadedVersion = {
      gen: spec.gen, manifest: m, dispatch: spec.dispatch, slots: [], refs: 0, retired: false, freed: false,
      metrics, guard: VersionGuard.of(m, metrics.resilience),
    };
    if (spec.dispatch === 'inline') {
      const rt = await loadRuntime(m, spec.payload ?? new Uint8Array(0), { allowFixtures: this.h.config.allowFixtureModels, inWorker: false, shared: spec.shared, learned: spec.learned });
      try {
        await validateRuntime(rt);
      } catch (e) {
        await rt.dispose();
        throw e;
      }
      v.runtime = rt;
    } else {
      const layout = slotLayout(m);
      const dispatcher = this.h.dispatcher;
      if (typeof layout === 'string') throw new SluiceError('MANIFEST_INVALID', layout);
      if (!dispatcher || !this.h.arena || !spec.slots || !spec.entries) throw new SluiceError('INTERNAL', `${m.name}@${m.version}: a pooled version reached a data plane without a pool`);
      spec.slots.forEach((s, i) => dispatcher.attach(s, spec.entries![i]!));
      v.slots = [...spec.slots];
      v.batcher = new Batcher({
        gen: spec.gen,
        layout,
        maxQueueDelayUs: m.batching.maxQueueDelayUs,
        maxQueueSize: m.batching.maxQueueSize,
        arena: this.h.arena,
        slots: v.slots,
        run: (slot) => dispatcher.run(slot),
        waitSync: (slot, us) => {
          const t0 = performance.now();
          const answered = dispatcher.waitSync(slot, us);
          // Time the thread was held serving its own request, for admission (see OWN_WAITS).
          if (answered) this.h.admission.observeOwnWait(performance.now() - t0);
          return answered;
        },
        onQueued: (ms) => {
          v.metrics.observeQueue(ms);
          this.h.admission.observeQueueDelay(ms);
        },
        onBatch: (rows, ms, requests) => v.metrics.observeExecution(rows, ms, requests),
      });
    }
    let e = this.h.models.get(m.name);
    if (!e) {
      e = { name: m.name, slot: spec.tableSlot, routes: new Map(), announced: false, versions: new Map(), byGen: new Map() };
      this.h.models.set(m.name, e);
    }
    e.byGen.set(spec.gen, v);
  }

  /**
   * A description other threads can build this version's runtime from without a copy of its
   * weights (undefined when the runtime cannot be shared); release it with releaseShared.
   */
  shareRuntime(model: string, gen: number): SharedRuntime | undefined {
    return this.h.models.get(model)?.byGen.get(gen)?.runtime?.share?.();
  }

  /** Drops an installed version that will not be activated (its load failed elsewhere). */
  discard(model: string, gen: number): void {
    const e = this.h.models.get(model);
    const v = e?.byGen.get(gen);
    if (!e || !v) return;
    this.retire(v);
    if (!e.announced && e.byGen.size === 0) this.h.models.delete(model);
  }

  /**
   * After the control plane made `gen` live: it serves requests that name its version (a
   * reloaded version replaces its older copy). `asDefault`: the control plane stored `gen` in
   * the table first, so unversioned requests already reach it; what it replaced retires unless
   * the control plane keeps it live (a route still names it), or stays as the standby its
   * fallback policy asks for. `retire`: generations the control plane no longer keeps.
   */
  activate(model: string, gen: number, opts: ActivateOptions = {}): void {
    const asDefault = opts.asDefault ?? true;
    const m = this.h.models.get(model);
    const v = m?.byGen.get(gen);
    if (!m || !v) throw new SluiceError('INTERNAL', `activate: ${model} generation ${gen} is not installed on I/O thread ${this.h.thread}`);
    m.announced = true;
    const sameName = m.versions.get(v.manifest.version);
    m.versions.set(v.manifest.version, v);
    const retire = new Set(opts.retire ?? []);
    if (sameName && sameName !== v) retire.add(sameName.gen);
    const standby = m.standby;
    if (asDefault) {
      // Keep the replaced default loaded as the fallback when the new one's policy asks for it
      // (re-loading it on the first failure would take a payload read and a warm-up).
      // Re-loading the same version keeps the standby it had: a copy of itself is no fallback.
      const replaced = opts.previousDefault === undefined ? undefined : m.byGen.get(opts.previousDefault);
      m.standby = v.guard?.fallback?.policy !== 'previous_version' ? undefined
        : replaced && replaced.manifest.version !== v.manifest.version ? replaced : standby;
    }
    for (const g of retire) {
      const old = m.byGen.get(g);
      if (!old || old === v) continue;
      if (m.versions.get(old.manifest.version) === old) m.versions.delete(old.manifest.version);
      if (old !== m.standby) this.retire(old);
    }
    if (standby && standby !== m.standby && !standby.retired && [...m.versions.values()].every((x) => x !== standby)) this.retire(standby);
  }

  /** Versions the control plane stopped serving by name (unloaded one by one): they retire. */
  retireVersions(model: string, gens: number[]): void {
    const m = this.h.models.get(model);
    if (!m) return;
    for (const g of gens) {
      const old = m.byGen.get(g);
      if (!old) continue;
      if (m.versions.get(old.manifest.version) === old) m.versions.delete(old.manifest.version);
      if (m.standby === old) m.standby = undefined;
      this.retire(old);
    }
  }

  /** After the control plane cleared the model's table entry: every version retires. */
  unload(model: string): void {
    const m = this.h.models.get(model);
    if (!m) return;
    this.h.models.delete(model);
    this.h.routing.unloaded(m);
    const all = [...m.byGen.values()];
    m.versions.clear();
    for (const v of all) this.retire(v);
  }

  /** Marks a version retired; frees it now if no request holds it, else when the last one ends. */
  retire(v: LoadedVersion): void {
    v.retired = true;
    if (v.refs === 0) this.free(v);
  }

  /** Frees this thread's copy of a retired version once nothing here holds it. */
  free(v: LoadedVersion): void {
    if (v.freed) return;
    v.freed = true;
    v.guard?.dispose();
    this.h.models.get(v.manifest.name)?.byGen.delete(v.gen);
    if (v.batcher) for (const s of v.slots) this.h.dispatcher!.detach(s);
    if (v.runtime) {
      v.runtime.dispose().catch((e) => log.warn('engine: dispose failed', errorFields(e)));
    }
    this.h.onReleased(v.gen);
  }

  /**
   * Every version of a model not yet freed on this thread, including retired ones still
   * finishing requests (what the reclamation is waiting for). For operators and tests.
   */
  heldVersions(name: string): Array<{ version: string; generation: number; refs: number; retired: boolean; dispatch: DispatchMode }> {
    const m = this.h.models.get(name);
    if (!m) return [];
    return [...m.byGen.values()].map((v) => ({ version: v.manifest.version, generation: v.gen, refs: v.refs, retired: v.retired, dispatch: v.dispatch }));
  }

  /** In-flight and queued requests across every version on this thread. */
  get inFlight(): number {
    let n = 0;
    for (const m of this.h.models.values()) for (const v of m.byGen.values()) n += v.refs;
    return n;
  }
}
