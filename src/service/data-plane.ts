/**
 * The data plane of one I/O thread: the request path (resolve the version, check the inputs,
 * run inline or hand to this thread's batcher, answer, record metrics) over this thread's own
 * copies of the live versions. Every I/O thread has one; the main thread's is inside the Engine.
 *
 * What it shares with the other threads is memory that needs no lock: the model table (per
 * model an Int32 default-version generation and an Int32 route generation, each read at most
 * once per request with Atomics.load) and the arena and
 * dispatch board of pooled batches. Everything else is this thread's: runtimes of inline models
 * (a native kernel handle or an ONNX session belongs to one isolate), batchers over this
 * thread's arena slots, reference counts, metrics. The control plane (src/service/engine.ts)
 * changes it only through the version events below (carried out in plane-lifecycle.ts), in this order for a swap:
 *   install (build this thread's copy, not yet reachable) -> the control plane's one atomic
 *   store of the new generation (requests read it on their next lookup) -> activate (the
 *   version names and the previous version's retirement follow).
 * A retired version is freed here when this thread's last request on it ends, and `onReleased`
 * tells the control plane, which frees the pool's copy and the arena slots once every thread
 * has released it (epoch reclamation, with threads as the epochs).
 */
import { SluiceError, toSluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Config } from '../config/index.js';
import type { DispatchMode, TensorSpec } from '../model/manifest.js';
import { checkInputs, selectOutputs } from '../model/signature.js';
import type { Tensor } from '../model/tensor.js';
import { Metrics } from '../metrics/version-metrics.js';
import type { WindowSnapshot } from '../metrics/windows.js';
import { TableView } from '../dispatch/model-table.js';
import type { BatchTensor, SharedRuntime } from '../worker/runtimes/index.js';
import { Admission } from './admission.js';
import type { InferRequest, InferResponse, ModelConfig, ModelMetadata, VersionStats } from './types.js';
import { invalidName, isValidName } from '../names.js';
import { modelNotFound, type ActivateOptions, type DataPlaneOptions, type VersionSpec } from './plane-types.js';
import { guardedInfer, type GuardHost } from './resilience/guard.js';
import type { PublishedRoute } from '../routing/plane-route.js';
import type { ShadowSnapshot } from '../routing/shadow.js';
import { featuresOf, PlaneRouting, type Routed } from './plane-routing.js';
import { PlaneLifecycle } from './plane-lifecycle.js';
import type { LoadedVersion, ModelEntry } from './plane-versions.js';
import { configOf, metadataOf, statsOf } from './plane-metadata.js';
import { DriftSampler, type DriftBatch } from '../analyze/drift-sampler.js';

/**
 * Wall-clock ms of a performance.now() reading, without reading the clock again: this thread's
 * time origin plus the reading. Windows (src/metrics/windows.ts) align buckets on wall-clock
 * time across threads; each thread's origin is its own start, so the threads agree to well
 * within a bucket (the monotonic clock and the wall clock drift apart by far less).
 */
const TIME_ORIGIN = performance.timeOrigin;
function wallClock(perfNow: number): number {
  return TIME_ORIGIN + perfNow;
}

export class DataPlane {
  readonly config: Readonly<Config>;
  readonly thread: number;
  /** This thread's latency histograms and counters; whole-server views merge every thread's. */
  readonly metrics = new Metrics();
  /**
   * Overload shedding for this thread: transports ask it at each inference request's entry,
   * before reading the body; batchers feed it their queueing delay.
   */
  readonly admission: Admission;
  /** Inference requests this thread took (for the per-thread counters of /metrics). */
  requests = 0;
  private readonly table: TableView;
  private readonly routing: PlaneRouting;
  /** Install, activate, retire and free: the control plane's version events (plane-lifecycle.ts). */
  private readonly lifecycle: PlaneLifecycle;
  /** Samples of answered and failed requests for drift monitoring; absent at rate 0. */
  private readonly drift: DriftSampler | undefined;
  private readonly models = new Map<string, ModelEntry>();
  private startupModels: readonly string[] = [];
  private started = false;
  private closing = false;

  constructor(opts: DataPlaneOptions) {
    const config = opts.config;
    this.config = config;
    this.thread = opts.thread;
    this.table = new TableView(opts.table);
    this.routing = new PlaneRouting({
      models: this.models,
      table: this.table,
      metrics: this.metrics,
      accepting: () => this.admission.shedder.accept >= 1,
      closing: () => this.closing,
      run: (v, ordered, rows) => this.run(v, ordered, rows, Infinity, 0, false),
      onDecisions: opts.onDecisions,
    });
    this.drift = config.driftSampleRate > 0 ? new DriftSampler(config.driftSampleRate) : undefined;
    this.admission = new Admission({
      enabled: config.admission,
      thread: opts.thread,
      lagTargetMs: config.admissionLagTargetMs,
      turnBudgetMs: config.admissionTurnBudgetMs,
      queueTargetMs: config.admissionQueueTargetMs,
      minInFlight: Math.min(config.admissionMinInFlight, config.admissionMaxInFlight),
      maxInFlight: config.admissionMaxInFlight,
      retryAfterS: config.admissionRetryAfterS,
    });
    this.admission.start();
    this.lifecycle = new PlaneLifecycle({
      thread: this.thread, config, metrics: this.metrics, admission: this.admission, models: this.models,
      arena: opts.arena, dispatcher: opts.dispatcher, routing: this.routing,
      closing: () => this.closing, onReleased: opts.onReleased,
    });
  }

  // ---- health -------------------------------------------------------------------------------

  /** Start-up finished: readiness now depends on these models serving. */
  markStarted(startupModels: readonly string[]): void {
    this.startupModels = startupModels;
    this.started = true;
  }

  live(): boolean {
    return !this.closing;
  }

  /** Ready when start-up finished, every start-up model is serving, and not draining. */
  ready(): boolean {
    return this.started && !this.closing && this.startupModels.every((n) => this.activeVersion(n) !== undefined);
  }

  modelReady(name: string, version?: string): boolean {
    const m = this.models.get(name);
    if (!m || !m.announced || this.closing) return false;
    if (version === undefined) return this.activeVersion(name) !== undefined;
    const v = m.versions.get(version);
    return v !== undefined && !v.retired;
  }

  // ---- inference ----------------------------------------------------------------------------

  private activeVersion(name: string): LoadedVersion | undefined {
    const m = this.models.get(name);
    if (!m || !m.announced) return undefined;
    return m.byGen.get(this.table.activeGeneration(m.slot));
  }

  /** The version a request goes to: the named one, or whatever is active right now. */
  private resolve(name: string, version: string | undefined): LoadedVersion {
    const m = this.models.get(name);
    if (!m || !m.announced) throw modelNotFound(name);
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
    this.requests++;
    let v: LoadedVersion | undefined;
    let routed: Routed | undefined;
    try {
      if (this.closing) throw new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
      routed = req.version === undefined || req.version === '' ? this.routing.pick(req) : undefined;
      v = routed ? routed.v : this.resolve(req.model, req.version);
      const { ordered, rows } = checkInputs(v.manifest, req.inputs);
      const selected = selectOutputs(v.manifest.signature, req.outputs);
      const deadline = req.deadline ?? Infinity;
      if (deadline !== Infinity && deadline <= performance.now()) throw new SluiceError('DEADLINE_EXCEEDED', 'deadline passed before the request was admitted');
      const version = v;
      // A learned version logs its rows' contexts itself (learnedAnswer). Features are logged
      // from the request's own tensor when the answer is given before this returns (the
      // decision's builder copies them at once), else from a copy taken now: by the time a
      // later answer comes, the request's buffers may serve another request.
      const logFeatures = routed !== undefined && routed.route.spec.logFeatures && version.runtime?.learned === undefined;
      if (version.guard !== undefined) {
        const res = guardedInfer(this.guardHost, version, req, ordered, rows, selected, deadline, t0);
        const r = routed;
        if (!r) return res;
        if (logFeatures) r.features = featuresOf(ordered, res instanceof Promise);
        return res instanceof Promise
          ? res.then((a) => this.routing.answered(a, r, req, rows, t0, performance.now()), (e: unknown) => {
            this.routing.failed(r);
            throw e;
          })
          : this.routing.answered(res, r, req, rows, t0, performance.now());
      }
      const outs = this.run(version, ordered, rows, deadline, req.blockUs ?? 0, req.admitted === true);
      const r = routed;
      if (logFeatures) r!.features = featuresOf(ordered, outs instanceof Promise);
      if (outs instanceof Promise) {
        return outs.then(
          (o) => {
            const end = performance.now();
            const res = this.answer(version, req, o, rows, selected, t0, end);
            return r ? this.routing.answered(res, r, req, rows, t0, end) : res;
          },
          (e: unknown) => {
            if (r) this.routing.failed(r);
            throw this.failure(version, e, t0);
          },
        );
      }
      const res = this.answer(version, req, outs.outs, rows, selected, t0, outs.end);
      if (version.runtime?.learned !== undefined) this.routing.learnedAnswer(res, version, req, ordered, outs.outs, rows, r);
      return r ? this.routing.answered(res, r, req, rows, t0, outs.end) : res;
    } catch (e) {
      if (routed) this.routing.failed(routed);
      throw v ? this.failure(v, e, t0) : toSluiceError(e);
    }
  }

  /**
   * This thread's window of a version over [fromMs, toMs] (src/metrics/windows.ts), undefined
   * when this thread never made metrics for it. The control plane sums every thread's.
   */
  windowSnapshot(model: string, version: string, fromMs: number, toMs: number): WindowSnapshot | undefined {
    return this.metrics.find(model, version)?.window?.snapshot(fromMs, toMs);
  }

  /** This thread's drift samples since the last call (the control plane's DriftMonitor takes them). */
  takeDriftSamples(): DriftBatch[] {
    return this.drift?.take() ?? [];
  }

  /** This thread's shadow figures for a model (the control plane merges every thread's). */
  shadowSnapshots(model: string): ShadowSnapshot[] {
    return this.routing.shadowSnapshots(model);
  }

  private answer(v: LoadedVersion, req: InferRequest, outs: BatchTensor[], rows: number, selected: number[] | undefined, t0: number, end: number): InferResponse {
    v.metrics.observeSuccess(end - t0, rows, wallClock(end));
    if (this.drift !== undefined && this.drift.draw()) this.drift.answer(v.manifest, req.inputs, rows, outs[0]?.data as ArrayLike<number | bigint> | undefined);
    return this.response(v, req, outs, selected);
  }

  /** An answer of `v` to `req`, recording nothing. */
  private response(v: LoadedVersion, req: InferRequest, outs: BatchTensor[], selected: number[] | undefined): InferResponse {
    return { model: v.manifest.name, version: v.manifest.version, id: req.id, outputs: this.outputs(v, outs, selected) };
  }

  /** What the guarded path (src/service/resilience/guard.ts) borrows from the data plane. */
  private readonly guardHost: GuardHost<LoadedVersion> = {
    run: (v, ordered, rows, deadline, blockUs, admitted) => this.run(v, ordered, rows, deadline, blockUs, admitted),
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
    const end = performance.now();
    v.metrics.observeFailure(end - t0, err.code, wallClock(end));
    if (this.drift !== undefined && this.drift.draw()) this.drift.failure(v.manifest.name, v.manifest.version);
    return err;
  }

  /**
   * Executes a checked request on its version, holding a reference to it meanwhile. Inline
   * runtimes that answer synchronously give their outputs (and the clock reading taken after
   * them, reused for the request's latency) without a promise. An `admitted` request (see
   * InferRequest.admitted) to a pooled version is held to the in-flight limit as it enters the pool.
   */
  private run(v: LoadedVersion, ordered: Tensor[], rows: number, deadline: number, blockUs: number, admitted: boolean): { outs: BatchTensor[]; end: number } | Promise<BatchTensor[]> {
    v.refs++;
    let pending: Promise<BatchTensor[]>;
    /** Whether it holds a place under the in-flight limit, given back with the reference. */
    let pooled = false;
    try {
      if (v.batcher) {
        if (admitted) {
          if (!this.admission.enterPool()) throw this.admission.overloaded;
          pooled = true;
        }
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
      this.release(v, pooled);
      throw e;
    }
    return pending.finally(() => this.release(v, pooled));
  }

  private release(v: LoadedVersion, pooled = false): void {
    if (pooled) this.admission.leavePool();
    if (--v.refs === 0 && v.retired) this.lifecycle.free(v);
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
    return metadataOf(this.models.get(name)!, v);
  }

  /** The inputs a request to this model (and version) is checked against; cheap, for the hot path. */
  inputSpecs(name: string, version?: string): readonly TensorSpec[] {
    return this.resolve(name, version).manifest.signature.inputs;
  }

  modelConfig(name: string, version?: string): ModelConfig {
    return configOf(name, this.resolve(name, version));
  }

  /** This thread's counters of every serving version of a model (the engine sums the threads'). */
  modelStats(name: string): VersionStats[] {
    const m = this.models.get(name);
    if (!m || !m.announced) throw modelNotFound(name);
    return statsOf(m);
  }

  /** Serving models and their active versions. */
  serving(): Array<{ name: string; version: string }> {
    const out: Array<{ name: string; version: string }> = [];
    for (const name of this.models.keys()) {
      const v = this.activeVersion(name);
      if (v) out.push({ name, version: v.manifest.version });
    }
    return out;
  }

  /** This thread's share of the work, for /metrics (summed over threads, kept apart by label). */
  threadLines(): string[] {
    return [
      '# HELP sluice_io_thread_requests_total Inference requests taken by each I/O thread (0 = the main thread).',
      '# TYPE sluice_io_thread_requests_total counter',
      `sluice_io_thread_requests_total{thread="${this.thread}"} ${this.requests}`,
      ...this.routing.metricLines(),
    ];
  }

  // ---- version events (from the control plane) ---------------------------------------------

  /**
   * Builds this thread's copy of a version and makes it findable by its generation, which no
   * request reads until the control plane stores it in the table (plane-lifecycle.ts).
   */
  install(spec: VersionSpec): Promise<void> {
    return this.lifecycle.install(spec);
  }

  /** A description other threads can build this version's runtime from (plane-lifecycle.ts). */
  shareRuntime(model: string, gen: number): SharedRuntime | undefined {
    return this.lifecycle.shareRuntime(model, gen);
  }

  /** Drops an installed version that will not be activated (its load failed elsewhere). */
  discard(model: string, gen: number): void {
    this.lifecycle.discard(model, gen);
  }

  /** After the control plane made `gen` live (plane-lifecycle.ts says what follows). */
  activate(model: string, gen: number, opts: ActivateOptions = {}): void {
    this.lifecycle.activate(model, gen, opts);
  }

  /** Versions the control plane stopped serving by name (unloaded one by one): they retire. */
  retireVersions(model: string, gens: number[]): void {
    this.lifecycle.retireVersions(model, gens);
  }

  /** Builds this thread's copy of a route; no request reads it until the table names its generation. */
  installRoute(model: string, route: PublishedRoute): void {
    const m = this.models.get(model);
    if (!m) throw new SluiceError('INTERNAL', `installRoute: ${model} is not loaded on I/O thread ${this.thread}`);
    this.routing.install(m, route);
  }

  /** After the control plane stored route generation `gen` (or none): older routes are dropped. */
  routeStored(model: string, gen: number): void {
    const m = this.models.get(model);
    if (m) this.routing.stored(m, gen);
  }

  /** The route in force on this thread (for operators and tests). */
  routeInForce(model: string): PublishedRoute | undefined {
    const m = this.models.get(model);
    return m ? m.routes.get(this.table.routeGeneration(m.slot))?.spec : undefined;
  }

  /** After the control plane cleared the model's table entry: every version retires. */
  unload(model: string): void {
    this.lifecycle.unload(model);
  }

  /** Every version of a model not yet freed on this thread (for operators and tests). */
  heldVersions(name: string): Array<{ version: string; generation: number; refs: number; retired: boolean; dispatch: DispatchMode }> {
    return this.lifecycle.heldVersions(name);
  }

  /** In-flight and queued requests across every version on this thread. */
  get inFlight(): number {
    return this.lifecycle.inFlight;
  }

  /**
   * Drains and stops: readiness turns false at once, new requests get SHUTTING_DOWN, accepted
   * ones finish (up to drainTimeoutMs, then they fail with SHUTTING_DOWN), runtimes are disposed.
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
    // The last answers' decisions, without waiting for the flush timer (unref'd: it would not
    // hold a stopping thread).
    this.routing.flush();
  }

  /** After the pool stopped: disposes what is left. */
  async dispose(): Promise<void> {
    const all = [...this.models.values()].flatMap((m) => [...m.byGen.values()]);
    for (const v of all) await v.runtime?.dispose().catch(() => undefined);
    this.models.clear();
  }
}
