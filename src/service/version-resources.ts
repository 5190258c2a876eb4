/**
 * What a version holds while any plane serves it, and how it gets it: the dispatch it runs
 * with, its payload in shared memory, its pool side (a worker-pool load, arena slots and board
 * entries for each I/O thread) and its online learner; then every plane's install. The engine
 * (engine.ts) decides what is live; this part acquires a version's resources before it is
 * activated and gives them back once the last plane that installed it has released it.
 */
import type { Arena } from '../dispatch/arena.js';
import type { ModelTable } from '../dispatch/model-table.js';
import { DEFAULT_DISPATCH } from '../dispatch/policy.js';
import type { WorkerPool } from '../dispatch/pool.js';
import { slotLayout } from '../dispatch/slot-layout.js';
import { SluiceError } from '../errors.js';
import { isLearnedKind } from '../learn/bandit/config.js';
import type { Learners } from '../learn/learners.js';
import type { OnlineLearner } from '../learn/online-learner.js';
import type { DispatchMode, Manifest } from '../model/manifest.js';
import type { VersionSource } from '../repository/directory.js';
import { releaseShared, type SharedRuntime } from '../worker/runtimes/index.js';
import type { PlaneLink } from './plane-link.js';
import type { VersionSpec } from './plane-types.js';

/** Arena slots per pooled version and plane: two per worker keeps each worker busy while one batch returns. */
const SLOTS_PER_WORKER = 2;

/** The pool-side resources of a version, freed when every plane that installed it released it. */
interface Held {
  pooled: boolean;
  slots: number[];
  entries: number[];
  waiting: Set<number>;
  /** A version learned online: its learner (shared by reloads of the same version). */
  learner?: OnlineLearner;
}

export interface VersionResourcesHost {
  table: ModelTable;
  arena: Arena | undefined;
  pool: WorkerPool | undefined;
  learners: Learners;
  /** Every plane, the main thread's first (the engine's list: planes attached later are in it). */
  links: readonly PlaneLink[];
  /** The main thread's inline runtime of a version, to build the other threads' on. */
  shareRuntime(model: string, gen: number): SharedRuntime | undefined;
}

export class VersionResources {
  private readonly held = new Map<number, Held>();

  constructor(private readonly host: VersionResourcesHost) {}

  /** Where a version runs: its manifest's dispatch or its kind's default; the pool only where it can. */
  private dispatchOf(m: Manifest): DispatchMode {
    const wanted = m.dispatch ?? DEFAULT_DISPATCH[m.kind];
    if (wanted === 'inline') return 'inline';
    const layout = slotLayout(m);
    if (!this.host.pool || typeof layout === 'string') {
      // An explicit request for the pool that cannot be met is an error; a default falls back.
      if (m.dispatch === 'pool') {
        throw new SluiceError('MANIFEST_INVALID', `${m.name}@${m.version}: dispatch "pool" is impossible: ${this.host.pool ? layout : 'the engine has no workers (SLUICE_WORKERS=0)'}`);
      }
      return 'inline';
    }
    return 'pool';
  }


  /**
   * Everything before activation: payload, pool load and arena slots (pooled), and every
   * plane's install (inline runtimes are built, warmed and smoke-tested in each thread).
   */
  async prepare(source: VersionSource): Promise<VersionSpec> {
    const m = source.manifest;
    const dispatch = this.dispatchOf(m);
    const bytes = await source.readPayload();
    // One copy in shared memory: every I/O thread builds its runtime from the same bytes.
    const payload = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
    payload.set(bytes);
    const gen = this.host.table.newGeneration();
    const learner = isLearnedKind(m.kind) ? await this.host.learners.acquire(m, bytes) : undefined;
    const base: VersionSpec = { gen, tableSlot: this.host.table.slotOf(m.name), manifest: m, dispatch, ...(learner ? { learned: learner.cell.buffer } : {}) };
    const h: Held = { pooled: dispatch === 'pool', slots: [], entries: [], waiting: new Set(), ...(learner ? { learner } : {}) };
    const specs: VersionSpec[] = [];
    if (dispatch === 'inline') {
      for (const _ of this.host.links) specs.push({ ...base, payload });
    } else {
      const layout = slotLayout(m);
      if (typeof layout === 'string') throw new SluiceError('MANIFEST_INVALID', layout);
      const nSlots = Math.max(1, this.host.pool!.threads * SLOTS_PER_WORKER);
      try {
        for (const _ of this.host.links) {
          const slots: number[] = [];
          const entries: number[] = [];
          for (let i = 0; i < nSlots; i++) {
            const at = this.host.arena!.alloc(layout.bytes);
            if (at === undefined) {
              throw new SluiceError('ARENA_EXHAUSTED', `${m.name}@${m.version}: needs ${nSlots * this.host.links.length} x ${layout.bytes} bytes of arena (${nSlots} slots for each of ${this.host.links.length} I/O threads); raise SLUICE_ARENA_MB`);
            }
            h.slots.push(at);
            slots.push(at);
            const e = this.host.pool!.allocEntry(at);
            h.entries.push(e);
            entries.push(e);
          }
          specs.push({ ...base, slots, entries });
        }
        await this.host.pool!.load(gen, m, payload);
      } catch (e) {
        this.free(gen, h);
        throw e;
      }
    }
    this.held.set(gen, h);
    const install = (l: PlaneLink, spec: VersionSpec) => l.install(spec).then(() => {
      h.waiting.add(l.thread);
    });
    // The main thread's plane first: an inline runtime it can share (native linear weights) is
    // then built on by every other thread instead of being parsed and copied again.
    const results = await Promise.allSettled([install(this.host.links[0]!, specs[0]!)]);
    if (results[0]!.status === 'fulfilled' && this.host.links.length > 1) {
      const shared = dispatch === 'inline' ? this.host.shareRuntime(m.name, gen) : undefined;
      try {
        results.push(...await Promise.allSettled(this.host.links.slice(1).map((l, i) => install(l, shared ? { ...specs[i + 1]!, shared } : specs[i + 1]!))));
      } finally {
        if (shared) releaseShared(shared);
      }
    }
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) {
      // Planes that installed it drop it (and release it); with none holding it, free now.
      const installed = this.host.links.filter((l) => h.waiting.has(l.thread));
      if (installed.length === 0) this.free(gen, h);
      await Promise.all(installed.map((l) => l.discard(m.name, gen)));
      throw (failure as PromiseRejectedResult).reason;
    }
    return specs[0]!;
  }

  /** Plane `thread` released version `gen`: its resources go back once no plane holds it. */
  released(thread: number, gen: number): void {
    const h = this.held.get(gen);
    if (!h) return;
    h.waiting.delete(thread);
    if (h.waiting.size === 0) this.free(gen, h);
  }

  private free(gen: number, h: Held): void {
    this.held.delete(gen);
    if (h.learner) this.host.learners.release(h.learner);
    if (!h.pooled) return;
    this.host.pool!.unload(gen);
    for (const e of h.entries) this.host.pool!.freeEntry(e);
    for (const s of h.slots) this.host.arena!.release(s);
  }
}
