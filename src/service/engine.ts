/**
 * The inference service: one transport-agnostic API (infer, metadata, readiness, load/unload)
 * that the HTTP, gRPC and stream front ends call.
 *
 * Each model has one active version, named by a generation in the shared model table. A
 * request reads that generation once and is served entirely by that version. Loading a new
 * version happens off the hot path (load, warm, smoke-test), then one atomic store activates it;
 * the previous version is retired and freed only when no request holds it any more (reference
 * counts kept on this thread, which is the only one that creates work).
 */
import { DirectoryRepository, type VersionSource } from '../repository/directory.js';
import type { ModelCatalog } from './catalog.js';
import { loadConfig, type Config } from '../config/index.js';
import { SluiceError, toSluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { DispatchMode, Manifest, TensorSpec } from '../model/manifest.js';
import { checkInputs, selectOutputs } from '../model/signature.js';
import type { Tensor } from '../model/tensor.js';
import { Metrics, type VersionMetrics } from '../metrics/version-metrics.js';
import { Arena } from '../dispatch/arena.js';
import { Batcher } from '../dispatch/batcher.js';
import { ModelTable } from '../dispatch/model-table.js';
import { DEFAULT_DISPATCH } from '../dispatch/policy.js';
import { WorkerPool } from '../dispatch/pool.js';
import { slotLayout } from '../dispatch/slot-layout.js';
import { loadRuntime, validateRuntime, type BatchTensor, type Runtime } from '../worker/runtimes/index.js';
import { Admission } from './admission.js';
import type { InferRequest, InferResponse, ModelConfig, ModelMetadata, RepositoryModel, VersionStats } from './types.js';
import { checkName, invalidName, isValidName } from '../names.js';
import { guardedInfer, VersionGuard, type GuardHost } from './resilience/guard.js';

/**
 * A lookup miss: NAME_INVALID when the name breaks the naming rule (src/names.ts), so every
 * transport answers a bad name the same way; checked only on a miss, never on the hot path.
 */
function modelNotFound(name: unknown): SluiceError {
  return isValidName(name) ? new SluiceError('MODEL_NOT_FOUND', `model ${String(name)} is not loaded`) : invalidName('model name');
}

const PLATFORM: Record<Manifest['kind'], string> = {
  linear: 'sluice_linear',
  logistic: 'sluice_logistic',
  onnx: 'onnxruntime_onnx',
  fixture: 'sluice_fixture',
};

/** Arena slots per pooled version: two per worker keeps each worker busy while one batch returns. */
const SLOTS_PER_WORKER = 2;

interface LoadedVersion {
  gen: number;
  manifest: Manifest;
  dispatch: DispatchMode;
  runtime?: Runtime;
  batcher?: Batcher;
  slots: number[];
  /** Requests holding this version (queued, running or computing inline). */
  refs: number;
  retired: boolean;
  freed: boolean;
  metrics: VersionMetrics;
  /** Fallback, circuit breaker, prediction cache: absent when the manifest has none of them. */
  guard?: VersionGuard;
}

interface ModelEntry {
  name: string;
  slot: number;
  /** Versions serving new requests, by version string. */
  versions: Map<string, LoadedVersion>;
  /** Every version not yet freed (including retired ones still finishing), by generation. */
  byGen: Map<number, LoadedVersion>;
  /**
   * The version the last swap replaced, kept loaded (not serving) while the active version's
   * fallback policy is `previous_version`, so that it can answer at once when the new one fails.
   */
  standby?: LoadedVersion;
}

export interface LoadOptions {
  /** Version to load; the latest in the repository when omitted. */
  version?: string;
}

export class Engine {
  readonly config: Readonly<Config>;
  /** Latency histograms and counters of every version, read by /metrics and /stats. */
  readonly metrics = new Metrics();
  /** Where versions come from: the repository directory, or the registry. */
  readonly catalog: ModelCatalog;
  /**
   * Overload shedding: transports ask it at each inference request's entry, before reading the
   * body; batchers feed it their queueing delay.
   */
  readonly admission: Admission;
  private readonly table = new ModelTable();
  private readonly arena: Arena | undefined;
  private readonly pool: WorkerPool | undefined;
  private readonly models = new Map<string, ModelEntry>();
  /** Per-model chain that serialises load/unload of the same model. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly loading = new Set<string>();
  private readonly failed = new Map<string, string>();
  private startupModels: string[] = [];
  private started = false;
  private closing = false;

  private constructor(config: Readonly<Config>, catalog?: ModelCatalog) {
    this.config = config;
    this.catalog = catalog ?? new DirectoryRepository(config.modelRepository);
    this.admission = new Admission({
      enabled: config.admission,
      lagTargetMs: config.admissionLagTargetMs,
      queueTargetMs: config.admissionQueueTargetMs,
      minInFlight: Math.min(config.admissionMinInFlight, config.admissionMaxInFlight),
      maxInFlight: config.admissionMaxInFlight,
      retryAfterS: config.admissionRetryAfterS,
    });
    this.admission.start();
    if (config.workers > 0) {
      this.arena = new Arena(config.arenaMb * 1024 * 1024);
      this.pool = new WorkerPool({
        threads: config.workers,
        arena: this.arena.buffer,
        table: this.table.buffer,
        allowFixtures: config.allowFixtureModels,
        spinUs: config.workerSpinUs,
      });
    }
  }

  /** Creates an engine and loads the configured start-up models from its catalog. */
  static async start(overrides: Partial<Config> = {}, catalog?: ModelCatalog): Promise<Engine> {
    const engine = new Engine(loadConfig(overrides), catalog);
    await engine.loadStartupModels();
    return engine;
  }

  private async loadStartupModels(): Promise<void> {
    const sel = this.config.startupModels;
    const names = sel === 'none' ? [] : sel === 'all' ? await this.catalog.startup() : sel;
    this.startupModels = names;
    for (const name of names) {
      try {
        await this.load(name);
      } catch (e) {
        // Keep serving the models that did load; readiness stays false until this one loads.
        log.error('engine: start-up model failed to load', { model: name, ...errorFields(e) });
      }
    }
    this.started = true;
  }

  // ---- health -------------------------------------------------------------------------------

  live(): boolean {
    return !this.closing;
  }

  /** Ready when start-up finished, every start-up model is serving, and not draining. */
  ready(): boolean {
    return this.started && !this.closing && this.startupModels.every((n) => this.activeVersion(n) !== undefined);
  }

  modelReady(name: string, version?: string): boolean {
    const m = this.models.get(name);
    if (!m || this.closing) return false;
    if (version === undefined) return this.activeVersion(name) !== undefined;
    const v = m.versions.get(version);
    return v !== undefined && !v.retired;
  }

  // ---- inference ----------------------------------------------------------------------------

  private activeVersion(name: string): LoadedVersion | undefined {
    const m = this.models.get(name);
    if (!m) return undefined;
    return m.byGen.get(this.table.activeGeneration(m.slot));
  }

  /** The version a request goes to: the named one, or whatever is active right now. */
  private resolve(name: string, version: string | undefined): LoadedVersion {
    const m = this.models.get(name);
    if (!m) throw modelNotFound(name);
    if (version !== undefined && version !== '') {
      const v = m.versions.get(version);
      if (!v || v.retired) throw isValidName(version) ? new SluiceError('VERSION_NOT_FOUND', `model ${name} has no loaded version ${String(version)}`) : invalidName('version');
      return v;
    }
    // The single read of the generation for this request: it keeps this version to the end.
    const v = m.byGen.get(this.table.activeGeneration(m.slot));
    if (!v || v.retired) throw new SluiceError('MODEL_NOT_READY', `model ${name} has no ready version`);
    return v;
  }

  /**
   * Throws what `infer` would for the model and version alone (SHUTTING_DOWN, MODEL_NOT_FOUND,
   * VERSION_NOT_FOUND, MODEL_NOT_READY). Front ends call it before decoding a request's tensors,
   * so a request to an unknown model is NOT_FOUND whatever its inputs hold, as in Triton, which
   * resolves the model before it reads the inputs. `infer` resolves again (the model may change
   * in between); its checks keep their order: shutdown, model and version, inputs, deadline.
   */
  checkTarget(model: string, version: string | undefined): void {
    if (this.closing) throw new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
    this.resolve(model, version);
  }

  /** Runs one request and says which version computed it. Rejects with coded SluiceErrors. */
  async infer(req: InferRequest): Promise<InferResponse> {
    return this.inferNow(req);
  }

  /**
   * `infer` for front ends on the hot path: the answer itself when it is ready at once (an
   * inline model whose runtime is synchronous), a promise otherwise. Throws (or rejects) coded
   * SluiceErrors. An inline request thus costs no promise and no microtask hop; it is
   * validated, computed and recorded exactly as through `infer`.
   */
  inferNow(req: InferRequest): InferResponse | Promise<InferResponse> {
    const t0 = performance.now();
    let v: LoadedVersion | undefined;
    try {
      if (this.closing) throw new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
      v = this.resolve(req.model, req.version);
      const { ordered, rows } = checkInputs(v.manifest, req.inputs);
      const selected = selectOutputs(v.manifest.signature, req.outputs);
      const deadline = req.deadline ?? Infinity;
      if (deadline !== Infinity && deadline <= performance.now()) throw new SluiceError('DEADLINE_EXCEEDED', 'deadline passed before the request was admitted');
      const version = v;
      if (version.guard !== undefined) return guardedInfer(this.guardHost, version, req, ordered, rows, selected, deadline, t0);
      const outs = this.run(version, ordered, rows, deadline, req.blockUs ?? 0);
      if (outs instanceof Promise) {
        return outs.then(
          (o) => this.answer(version, req, o, rows, selected, t0, performance.now()),
          (e: unknown) => {
            throw this.failure(version, e, t0);
          },
        );
      }
      return this.answer(version, req, outs.outs, rows, selected, t0, outs.end);
    } catch (e) {
      throw v ? this.failure(v, e, t0) : toSluiceError(e);
    }
  }

  private answer(v: LoadedVersion, req: InferRequest, outs: BatchTensor[], rows: number, selected: number[] | undefined, t0: number, end: number): InferResponse {
    v.metrics.observeSuccess(end - t0, rows);
    return this.response(v, req, outs, selected);
  }

  /** An answer of `v` to `req`, recording nothing. */
  private response(v: LoadedVersion, req: InferRequest, outs: BatchTensor[], selected: number[] | undefined): InferResponse {
    return { model: v.manifest.name, version: v.manifest.version, id: req.id, outputs: this.outputs(v, outs, selected) };
  }

  /** What the guarded path (src/service/resilience/guard.ts) borrows from the engine. */
  private readonly guardHost: GuardHost<LoadedVersion> = {
    run: (v, ordered, rows, deadline, blockUs) => this.run(v, ordered, rows, deadline, blockUs),
    answer: (v, req, outs, rows, selected, t0, end) => this.answer(v, req, outs, rows, selected, t0, end),
    respond: (v, req, outs, selected) => this.response(v, req, outs, selected),
    failure: (v, e, t0) => this.failure(v, e, t0),
    check: (v, req) => ({ ...checkInputs(v.manifest, req.inputs), selected: selectOutputs(v.manifest.signature, req.outputs) }),
    previous: (v) => {
      const s = this.models.get(v.manifest.name)?.standby;
      return s !== v && s?.retired === false ? s : undefined;
    },
    active: (model) => this.activeVersion(model),
  };

  private failure(v: LoadedVersion, e: unknown, t0: number): SluiceError {
    const err = this.runError(v, e);
    v.metrics.observeFailure(performance.now() - t0);
    return err;
  }

  /**
   * Executes a checked request on its version, holding a reference to it meanwhile. Inline
   * runtimes that answer synchronously give their outputs (and the clock reading taken after
   * them, reused for the request's latency) without a promise.
   */
  private run(v: LoadedVersion, ordered: Tensor[], rows: number, deadline: number, blockUs: number): { outs: BatchTensor[]; end: number } | Promise<BatchTensor[]> {
    v.refs++;
    let pending: Promise<BatchTensor[]>;
    try {
      if (v.batcher) {
        pending = v.batcher.submit(ordered, rows, deadline, blockUs);
      } else {
        // Inline compute time is the runtime call alone (validation is in the request latency).
        const t = performance.now();
        const r = v.runtime!.run(ordered, rows);
        if (!(r instanceof Promise)) {
          const end = performance.now();
          v.metrics.observeInline(rows, end - t);
          this.release(v);
          return { outs: r, end };
        }
        pending = r.then((outs) => {
          v.metrics.observeInline(rows, performance.now() - t);
          return outs;
        });
      }
    } catch (e) {
      this.release(v);
      throw e;
    }
    return pending.finally(() => this.release(v));
  }

  private release(v: LoadedVersion): void {
    if (--v.refs === 0 && v.retired) this.free(v);
  }

  private runError(v: LoadedVersion, e: unknown): SluiceError {
    if (e instanceof SluiceError) return e;
    // Inline model failures: log the detail here, send clients a sanitised message.
    log.warn('engine: model failed', { model: v.manifest.name, version: v.manifest.version, ...errorFields(e) });
    return toSluiceError(e, 'MODEL_ERROR', `model ${v.manifest.name} failed while computing`);
  }

  private outputs(v: LoadedVersion, outs: BatchTensor[], selected: number[] | undefined): Tensor[] {
    const specs = v.manifest.signature.outputs;
    const pick = (i: number): Tensor => ({ name: specs[i]!.name, datatype: specs[i]!.datatype, shape: outs[i]!.shape, data: outs[i]!.data });
    if (!selected) return specs.map((_, i) => pick(i));
    return selected.map(pick);
  }

  // ---- metadata -----------------------------------------------------------------------------

  modelMetadata(name: string, version?: string): ModelMetadata {
    const v = this.resolve(name, version);
    const m = this.models.get(name)!;
    return {
      name,
      versions: [...m.versions.keys()],
      platform: PLATFORM[v.manifest.kind],
      inputs: v.manifest.signature.inputs,
      outputs: v.manifest.signature.outputs,
    };
  }

  /** The inputs a request to this model (and version) is checked against; cheap, for the hot path. */
  inputSpecs(name: string, version?: string): readonly TensorSpec[] {
    return this.resolve(name, version).manifest.signature.inputs;
  }

  modelConfig(name: string, version?: string): ModelConfig {
    const v = this.resolve(name, version);
    const b = v.manifest.batching;
    return {
      name,
      version: v.manifest.version,
      platform: PLATFORM[v.manifest.kind],
      kind: v.manifest.kind,
      maxBatchSize: b.maxBatchSize,
      maxQueueDelayUs: b.maxQueueDelayUs,
      maxQueueSize: b.maxQueueSize,
      dispatch: v.dispatch,
      inputs: v.manifest.signature.inputs,
      outputs: v.manifest.signature.outputs,
    };
  }

  /** Counters of every serving version of a model. */
  modelStats(name: string): VersionStats[] {
    const m = this.models.get(name);
    if (!m) throw modelNotFound(name);
    return [...m.versions.values()].map((v) => ({
      version: v.manifest.version,
      success: v.metrics.success,
      failure: v.metrics.failure,
      rows: v.metrics.rows,
      executions: v.metrics.executions,
      overloaded: v.batcher?.stats.overloaded ?? 0,
      expired: v.batcher?.stats.expired ?? 0,
    }));
  }

  /** Models in the repository and loaded ones, with their state (OIP repository index). */
  async repositoryIndex(): Promise<RepositoryModel[]> {
    const out = new Map<string, RepositoryModel>();
    for (const e of await this.catalog.index()) {
      out.set(e.name, { name: e.name, state: 'UNAVAILABLE', reason: this.failed.get(e.name) ?? 'not loaded' });
    }
    for (const name of this.models.keys()) {
      const v = this.activeVersion(name);
      if (v) out.set(name, { name, version: v.manifest.version, state: 'READY', reason: '' });
    }
    for (const name of this.loading) {
      if (!out.has(name) || out.get(name)!.state !== 'READY') out.set(name, { name, state: 'LOADING', reason: 'loading' });
    }
    return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---- load / unload ------------------------------------------------------------------------

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
    const source = await this.catalog.open(name, opts.version);
    return this.loadVersion(source);
  }

  /**
   * Loads a version from any source, warms and smoke-tests it, then activates it with one
   * atomic store and retires the previous version. If anything fails before activation, the
   * serving version is untouched. Returns the activated version.
   */
  loadVersion(source: VersionSource): Promise<string> {
    const name = source.manifest.name;
    return this.serial(name, async () => {
      if (this.closing) throw new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
      this.loading.add(name);
      try {
        const v = await this.prepare(source);
        this.activate(v);
        this.failed.delete(name);
        log.info('engine: version active', { model: name, version: v.manifest.version, dispatch: v.dispatch, gen: v.gen });
        return v.manifest.version;
      } catch (e) {
        this.failed.set(name, e instanceof SluiceError ? e.message : 'load failed');
        throw e;
      } finally {
        this.loading.delete(name);
      }
    });
  }

  private dispatchOf(m: Manifest): DispatchMode {
    const wanted = m.dispatch ?? DEFAULT_DISPATCH[m.kind];
    if (wanted === 'inline') return 'inline';
    const layout = slotLayout(m);
    if (!this.pool || typeof layout === 'string') {
      // An explicit request for the pool that cannot be met is an error; a default falls back.
      if (m.dispatch === 'pool') {
        throw new SluiceError('MANIFEST_INVALID', `${m.name}@${m.version}: dispatch "pool" is impossible: ${this.pool ? layout : 'the engine has no workers (SLUICE_WORKERS=0)'}`);
      }
      return 'inline';
    }
    return 'pool';
  }

  /** Everything before activation: payload, runtime or pool load, smoke test. */
  private async prepare(source: VersionSource): Promise<LoadedVersion> {
    const m = source.manifest;
    const dispatch = this.dispatchOf(m);
    const payload = await source.readPayload();
    const gen = this.table.newGeneration();
    const metrics = this.metrics.of(m.name, m.version);
    const v: LoadedVersion = {
      gen, manifest: m, dispatch, slots: [], refs: 0, retired: false, freed: false,
      metrics, guard: VersionGuard.of(m, metrics.resilience),
    };
    if (dispatch === 'inline') {
      const rt = await loadRuntime(m, payload, { allowFixtures: this.config.allowFixtureModels, inWorker: false });
      try {
        await validateRuntime(rt);
      } catch (e) {
        await rt.dispose();
        throw e;
      }
      v.runtime = rt;
      return v;
    }
    const layout = slotLayout(m);
    if (typeof layout === 'string') throw new SluiceError('MANIFEST_INVALID', layout);
    const nSlots = Math.max(1, this.pool!.threads * SLOTS_PER_WORKER);
    for (let i = 0; i < nSlots; i++) {
      const at = this.arena!.alloc(layout.bytes);
      if (at === undefined) {
        this.releaseSlots(v);
        throw new SluiceError('ARENA_EXHAUSTED', `${m.name}@${m.version}: needs ${nSlots} x ${layout.bytes} bytes of arena; raise SLUICE_ARENA_MB`);
      }
      v.slots.push(at);
      this.pool!.attach(at);
    }
    try {
      await this.pool!.load(gen, m, payload);
    } catch (e) {
      this.releaseSlots(v);
      throw e;
    }
    const pool = this.pool!;
    v.batcher = new Batcher({
      gen,
      layout,
      maxQueueDelayUs: m.batching.maxQueueDelayUs,
      maxQueueSize: m.batching.maxQueueSize,
      arena: this.arena!.buffer,
      slots: v.slots,
      run: (slot) => pool.run(slot),
      waitSync: (slot, us) => pool.waitSync(slot, us),
      onQueued: (ms) => {
        v.metrics.observeQueue(ms);
        this.admission.observeQueueDelay(ms);
      },
      onBatch: (rows, ms, requests) => v.metrics.observeExecution(rows, ms, requests),
    });
    return v;
  }

  /** The hot swap: register, one atomic store, retire what it replaces. */
  private activate(v: LoadedVersion): void {
    const name = v.manifest.name;
    let m = this.models.get(name);
    if (!m) {
      m = { name, slot: this.table.slotOf(name), versions: new Map(), byGen: new Map() };
      this.models.set(name, m);
    }
    const previous = [...m.versions.values()];
    m.byGen.set(v.gen, v);
    m.versions.clear();
    m.versions.set(v.manifest.version, v);
    this.table.activate(m.slot, v.gen);
    // Keep the replaced version loaded as the fallback when the new one's policy asks for it
    // (re-loading it on the first failure would take a payload read and a warm-up).
    // Re-loading the same version keeps the standby it had: a copy of itself is no fallback.
    const standby = m.standby;
    const replaced = previous[0];
    m.standby = v.guard?.fallback?.policy !== 'previous_version' ? undefined
      : replaced && replaced.manifest.version !== v.manifest.version ? replaced : standby;
    for (const old of previous) if (old !== m.standby) this.retire(old);
    if (standby && standby !== m.standby && !standby.retired) this.retire(standby);
  }

  private retire(v: LoadedVersion): void {
    v.retired = true;
    if (v.refs === 0) this.free(v);
  }

  /** Frees a retired version once nothing holds it: pool copies, arena slots, runtime. */
  private free(v: LoadedVersion): void {
    if (v.freed) return;
    v.freed = true;
    v.guard?.dispose();
    this.models.get(v.manifest.name)?.byGen.delete(v.gen);
    if (v.batcher) {
      this.pool!.unload(v.gen);
      this.releaseSlots(v);
    }
    if (v.runtime) {
      v.runtime.dispose().catch((e) => log.warn('engine: dispose failed', errorFields(e)));
    }
  }

  private releaseSlots(v: LoadedVersion): void {
    for (const s of v.slots) {
      this.pool!.detach(s);
      this.arena!.release(s);
    }
    v.slots = [];
  }

  /** Stops serving a model: new requests get MODEL_NOT_FOUND, running ones finish. */
  unload(name: string): Promise<void> {
    return this.serial(name, async () => {
      const m = this.models.get(name);
      if (!m) throw modelNotFound(name);
      this.table.deactivate(m.slot);
      this.models.delete(name);
      const all = [...m.byGen.values()];
      m.versions.clear();
      for (const v of all) this.retire(v);
      log.info('engine: model unloaded', { model: name });
    });
  }

  /**
   * Every version of a model not yet freed, including retired ones still finishing requests
   * (what the reclamation is waiting for). For operators and tests.
   */
  heldVersions(name: string): Array<{ version: string; generation: number; refs: number; retired: boolean; dispatch: DispatchMode }> {
    const m = this.models.get(name);
    if (!m) return [];
    return [...m.byGen.values()].map((v) => ({ version: v.manifest.version, generation: v.gen, refs: v.refs, retired: v.retired, dispatch: v.dispatch }));
  }

  /** Bytes of the shared arena reserved by pooled versions. */
  get arenaBytesInUse(): number {
    return this.arena?.bytesInUse ?? 0;
  }

  /** Pool threads currently running. */
  get poolThreads(): number {
    return this.pool?.threads ?? 0;
  }

  /** In-flight and queued requests across every version. */
  get inFlight(): number {
    let n = 0;
    for (const m of this.models.values()) for (const v of m.byGen.values()) n += v.refs;
    return n;
  }

  /** Pool workers that died with work in flight since start. */
  get lostWorkers(): number {
    return this.pool?.lostWorkers ?? 0;
  }

  /**
   * Drains and stops: readiness turns false at once, new requests get SHUTTING_DOWN, accepted
   * ones finish (up to drainTimeoutMs, then they fail with SHUTTING_DOWN), then threads stop.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.admission.stop();
    const until = Date.now() + this.config.drainTimeoutMs;
    while (this.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    const all = [...this.models.values()].flatMap((m) => [...m.byGen.values()]);
    const err = new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
    for (const v of all) v.batcher?.drainWith(err);
    await this.pool?.close();
    for (const v of all) await v.runtime?.dispose().catch(() => undefined);
    this.models.clear();
  }
}
