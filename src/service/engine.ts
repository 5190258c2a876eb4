/**
 * The engine of one process: the control plane (catalog, version lifecycle (live-versions.ts),
 * the pool, the shared model table) plus the main thread's data plane, behind the one transport-agnostic API
 * (infer, metadata, readiness, load/unload) that the HTTP, gRPC and stream front ends call.
 *
 * Request-path methods are the main thread's data plane (src/service/data-plane.ts); other I/O
 * threads have their own data planes, reached through `PlaneLink`s (src/io). A version change is
 * published to every plane the same way: load and warm the version off the hot path (payload,
 * pool load, each plane's install), then one atomic store of its generation in the model table
 * makes it active for every thread at once, then each plane retires what it replaced. A load
 * answers only when every plane serves the result; a replaced version is freed in the pool only
 * when every plane has released it.
 */
import { DirectoryRepository, type VersionSource } from '../repository/directory.js';
import type { ModelCatalog } from './catalog.js';
import { loadConfig, type Config } from '../config/index.js';
import { SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Metrics } from '../metrics/version-metrics.js';
import { mergeSnapshots, snapshotMetrics, type MetricsSnapshot } from '../metrics/snapshot.js';
import { mergeWindowSnapshots, windowStats, WINDOW_BUCKET_MS, WINDOW_BUCKETS, windowStart, type WindowSnapshot, type WindowStats } from '../metrics/windows.js';
import { Arena } from '../dispatch/arena.js';
import { ModelTable } from '../dispatch/model-table.js';
import { WorkerPool } from '../dispatch/pool.js';
import { DataPlane } from './data-plane.js';
import { modelNotFound, type SharedMemory } from './plane-types.js';
import type { RepositoryModel, VersionStats } from './types.js';
import { checkName } from '../names.js';
import { PlaneService } from './plane-service.js';
import { LiveVersions, type LoadOptions } from './live-versions.js';
import type { PublishedRoute } from '../routing/plane-route.js';
import type { Decision } from '../learn/decision.js';
import { decisionsOf, releaseChunks, type DecisionChunk } from '../learn/decision-chunk.js';
import type { RouteSpec } from '../routing/route.js';
import type { DecisionLog } from '../learn/decision-log.js';
import type { FeedbackInput, FeedbackIntake, FeedbackOutcome } from '../learn/feedback.js';
import { banditCandidate, checkCandidate } from '../learn/bandit/candidate.js';
import type { CandidatePolicy } from '../learn/ope.js';
import { RouteBandits } from '../routing/route-bandit.js';
import { defaultJudge, Learners, type LearnersOptions } from '../learn/learners.js';
import type { DriftMonitor, ModelDriftReport } from '../analyze/drift-monitor.js';
import { DriftCollection } from './drift-collection.js';
import type { PlaneLink } from './plane-link.js';
import { VersionResources } from './version-resources.js';

export type { PlaneLink } from './plane-link.js';

export type { LoadOptions } from './live-versions.js';

export class Engine extends PlaneService {
  /** Where versions come from: the repository directory, or the registry. */
  readonly catalog: ModelCatalog;
  private readonly table: ModelTable;
  private readonly arena: Arena | undefined;
  private readonly pool: WorkerPool | undefined;
  private readonly links: PlaneLink[] = [];
  /** Versions' dispatch, payload, pool side and learner, acquired before activation (version-resources.ts). */
  private readonly resources: VersionResources;
  /** Loaded models' live versions, defaults and routes, and the changes to them (live-versions.ts). */
  private readonly versions: LiveVersions;
  /** Where routing decisions go (the decision log, src/learn, and any other listener). */
  private readonly decisionSinks = new Set<(batch: Decision[]) => void>();
  /** Lines a front end owns for /metrics, by thread (set by the main thread's front ends). */
  private extraLines: () => string[] = () => [];
  private databaseLines: () => string[] = () => [];
  /** The decision log and feedback intake (src/learn), when the server has a database. */
  private learning: { decisions: DecisionLog; feedback: FeedbackIntake } | undefined;
  /** Online learners of the loaded versions learned online (bandits). */
  readonly learners: Learners;
  /** The weights of bandit routes, learned from their variants' rewards. */
  readonly routeBandits = new RouteBandits();
  /**
   * Drift and data quality per version (src/analyze/drift-monitor.ts), fed with every plane's
   * samples every DRIFT_COLLECT_MS; `drift.driftDetected(model, version)` is what the alert
   * signals ask, `predictionsSince` what the canary judge's drift check compares.
   */
  readonly drift: DriftMonitor;
  private readonly driftCollection: DriftCollection;

  private constructor(config: Readonly<Config>, catalog: ModelCatalog | undefined, table: ModelTable, arena: Arena | undefined, pool: WorkerPool | undefined, learnersOptions?: LearnersOptions) {
    super(new DataPlane({
      config,
      table: table.buffer,
      arena: arena?.buffer,
      dispatcher: pool?.client,
      thread: 0,
      onReleased: (gen) => this.released(0, gen),
      onDecisions: (batch) => this.acceptDecisions(batch),
    }));
    this.table = table;
    this.arena = arena;
    this.pool = pool;
    this.learners = new Learners(learnersOptions ?? { judge: defaultJudge });
    this.driftCollection = new DriftCollection(this.links, { referenceRows: config.driftReferenceRows, windowMs: config.driftWindowMs, sampling: config.driftSampleRate > 0 });
    this.drift = this.driftCollection.monitor;
    const plane = this.plane;
    this.resources = new VersionResources({ table, arena, pool, learners: this.learners, links: this.links, shareRuntime: (model, gen) => plane.shareRuntime(model, gen) });
    this.catalog = catalog ?? new DirectoryRepository(config.modelRepository);
    this.versions = new LiveVersions({ table, links: this.links, resources: this.resources, catalog: this.catalog, routeBandits: this.routeBandits });
    this.pool?.onWorkersLost((alive) => {
      for (const l of this.links) if (l.thread !== 0) l.reap(alive);
    });
    this.links.push({
      thread: 0,
      install: (spec) => plane.install(spec),
      activate: async (model, gen, opts) => plane.activate(model, gen, opts),
      retireVersions: async (model, gens) => plane.retireVersions(model, gens),
      installRoute: async (model, route) => plane.installRoute(model, route),
      routeStored: async (model, gen) => plane.routeStored(model, gen),
      shadowSnapshots: async (model) => plane.shadowSnapshots(model),
      unload: async (model) => plane.unload(model),
      discard: async (model, gen) => plane.discard(model, gen),
      markStarted: async (models) => plane.markStarted(models),
      snapshot: async () => snapshotMetrics(plane.metrics, 0, this.mainLines()),
      windowSnapshot: async (model, version, fromMs, toMs) => plane.windowSnapshot(model, version, fromMs, toMs),
      driftSamples: async () => plane.takeDriftSamples(),
      reap: () => undefined,
    });
  }

  /** Creates an engine and loads the configured start-up models from its catalog. */
  static async start(overrides: Partial<Config> = {}, catalog?: ModelCatalog): Promise<Engine> {
    const engine = Engine.create(overrides, catalog);
    await engine.loadStartupModels();
    return engine;
  }

  /** Creates an engine without loading anything: attach I/O threads, then `loadStartupModels`. */
  static create(overrides: Partial<Config> = {}, catalog?: ModelCatalog, learners?: LearnersOptions): Engine {
    const config = loadConfig(overrides);
    const table = new ModelTable();
    const arena = config.workers > 0 ? new Arena(config.arenaMb * 1024 * 1024) : undefined;
    const pool = arena && new WorkerPool({
      threads: config.workers,
      arena: arena.buffer,
      table: table.buffer,
      allowFixtures: config.allowFixtureModels,
      spinUs: config.workerSpinUs,
    });
    return new Engine(config, catalog, table, arena, pool, learners);
  }

  /** What an I/O thread needs to build its data plane: the shared memory (structured-clonable). */
  get shared(): SharedMemory {
    return {
      table: this.table.buffer,
      arena: this.arena?.buffer,
      board: this.pool ? { buffer: this.pool.boardBuffer, entries: this.pool.boardEntries, spinUs: this.config.workerSpinUs } : undefined,
    };
  }

  /**
   * Adds an I/O thread's data plane. Call before loading anything (the new plane is sent only
   * the versions loaded after it joined).
   */
  attach(link: PlaneLink): void {
    if (!this.versions.empty) throw new SluiceError('INTERNAL', 'attach I/O threads before loading models');
    this.links.push(link);
  }

  /**
   * Sends routing decisions (every thread's, in batches) to `sink` too, as objects (read back
   * from the chunks: a cost only while someone listens); returns its removal.
   */
  onDecisions(sink: (batch: Decision[]) => void): () => void {
    this.decisionSinks.add(sink);
    return () => this.decisionSinks.delete(sink);
  }

  /** A chunk of decisions from a thread's data plane: to the decision log, and to listeners. */
  acceptDecisions(chunk: DecisionChunk): void {
    // Listeners read the chunk first: once offered, the log may write it and give its buffers back.
    if (this.decisionSinks.size > 0) {
      const batch = decisionsOf(chunk);
      for (const sink of this.decisionSinks) sink(batch);
    }
    if (this.learning) this.learning.decisions.offerChunk(chunk);
    else releaseChunks([chunk]);
  }

  /** Plane `thread` released version `gen`: its pool-side resources go back once no plane holds it. */
  released(thread: number, gen: number): void {
    this.resources.released(thread, gen);
  }

  async loadStartupModels(): Promise<void> {
    const sel = this.config.startupModels;
    const names = sel === 'none' ? [] : sel === 'all' ? await this.catalog.startup() : sel;
    for (const name of names) {
      try {
        await this.load(name);
      } catch (e) {
        // Keep serving the models that did load; readiness stays false until this one loads.
        log.error('engine: start-up model failed to load', { model: name, ...errorFields(e) });
      }
    }
    await Promise.all(this.links.map((l) => l.markStarted(names)));
  }

  // ---- the request path: the main thread's data plane (PlaneService) ------------------------

  /** The main thread's counters of every serving version of a model. */
  modelStats(name: string): VersionStats[] {
    return this.plane.modelStats(name);
  }

  heldVersions(name: string): ReturnType<DataPlane['heldVersions']> {
    return this.plane.heldVersions(name);
  }

  get inFlight(): number {
    return this.plane.inFlight;
  }

  // ---- decisions and feedback (src/learn) -----------------------------------------------------

  /** Gives the engine its decision log and feedback intake (serve.ts; both live on the main thread). */
  attachLearning(learning: { decisions: DecisionLog; feedback: FeedbackIntake }): void {
    // From now on every thread's routing decisions go into the log's bounded buffer (acceptDecisions).
    this.learning = learning;
    learning.feedback.subscribe(this.learners.offer);
    learning.feedback.subscribe(this.routeBandits.offer);
  }

  get decisions(): DecisionLog | undefined {
    return this.learning?.decisions;
  }

  feedback(items: FeedbackInput[]): Promise<FeedbackOutcome[]> {
    if (!this.learning) return Promise.reject(new SluiceError('ROUTE_NOT_FOUND', 'feedback is not enabled on this server (no database)'));
    return this.learning.feedback.submit(items);
  }

  // ---- whole-server views -------------------------------------------------------------------

  /** Lines the main thread's front ends add to /metrics (HTTP counters, admission). */
  setExtraLines(lines: () => string[]): void {
    this.extraLines = lines;
  }

  /** The registry database's own lines for /metrics (the embedded one's checkpoints; serve.ts). */
  setDatabaseLines(lines: () => string[]): void {
    this.databaseLines = lines;
  }

  /** Every I/O thread's metrics, as snapshots (for a thread that merges them itself). */
  snapshots(): Promise<MetricsSnapshot[]> {
    return Promise.all(this.links.map((l) => l.snapshot()));
  }

  /**
   * A version's requests over the last `seconds` (every 10 s bucket overlapping [toMs - seconds,
   * toMs], toMs = now unless given) on every I/O thread, summed exactly; `latency` is the
   * merged HDR snapshot of the successful requests (us), for percentiles or rank tests. Two
   * versions asked with the same `toMs` are compared over the same buckets. INVALID_ARGUMENT
   * for a span that is not in (0, 300] s; MODEL_NOT_FOUND / VERSION_NOT_FOUND when no thread has
   * served that version.
   */
  async windowSnapshot(model: string, version: string, seconds: number, opts: { toMs?: number } = {}): Promise<WindowSnapshot> {
    checkName(model, 'model name');
    checkName(version, 'version');
    const retention = WINDOW_BUCKET_MS * WINDOW_BUCKETS;
    if (typeof seconds !== 'number' || !(seconds > 0) || seconds * 1000 > retention) {
      throw new SluiceError('INVALID_ARGUMENT', `a window spans more than 0 and at most ${retention / 1000} seconds (got ${String(seconds)})`);
    }
    const toMs = opts.toMs ?? Date.now();
    if (!Number.isFinite(toMs)) throw new SluiceError('INVALID_ARGUMENT', 'a window must end at a finite time');
    const fromMs = toMs - seconds * 1000;
    const parts = (await Promise.all(this.links.map((l) => l.windowSnapshot(model, version, fromMs, toMs)))).filter((p) => p !== undefined);
    if (parts.length === 0) {
      if (!this.versions.hasModel(model)) throw modelNotFound(model);
      throw new SluiceError('VERSION_NOT_FOUND', `model ${model} has not served version ${version}`);
    }
    return mergeWindowSnapshots(parts, windowStart(fromMs, toMs), toMs);
  }

  /** Takes every plane's drift samples into the monitor now (src/service/drift-collection.ts). */
  collectDrift(): Promise<void> {
    return this.driftCollection.collect();
  }

  /**
   * Drift and data quality of every sampled version of `model`, after collecting the latest
   * samples. MODEL_NOT_FOUND for a model neither loaded nor ever sampled; a loaded model
   * with no samples yet (or sampling off) has an empty list of versions.
   */
  async driftReport(model: string): Promise<ModelDriftReport> {
    checkName(model, 'model name');
    await this.driftCollection.collect();
    if (!this.versions.hasModel(model) && !this.drift.has(model)) throw modelNotFound(model);
    return this.drift.report(model);
  }

  /** `version`'s sampled predictions since `sinceMs`, after collecting the latest samples. */
  async predictionsSince(model: string, version: string, sinceMs: number): Promise<Float64Array> {
    return this.driftCollection.predictionsSince(model, version, sinceMs);
  }

  /** `windowSnapshot` summarised: counts, errors by code, latency percentiles and mean in ms. */
  async windowStats(model: string, version: string, seconds: number, opts: { toMs?: number } = {}): Promise<WindowStats> {
    return windowStats(await this.windowSnapshot(model, version, seconds, opts));
  }

  /**
   * Every I/O thread's metrics merged (HDR histograms exactly), with the front ends' extra
   * exposition lines summed per series. With one I/O thread: the main thread's own objects.
   */
  async wholeMetrics(): Promise<{ metrics: Metrics; lines: string[] }> {
    if (this.links.length === 1) return { metrics: this.plane.metrics, lines: this.mainLines() };
    return mergeSnapshots(await this.snapshots());
  }

  /**
   * The main thread's exposition lines: its front ends', its plane's, and the decision log's,
   * feedback intake's and database's (they live on this thread only, so their figures are whole
   * already).
   */
  private mainLines(): string[] {
    const learning = this.learning ? [...this.learning.decisions.metricLines(), ...this.learning.feedback.metricLines()] : [];
    return [...this.extraLines(), ...this.plane.threadLines(), ...learning, ...this.learners.metricLines(), ...this.drift.metricLines(), ...this.databaseLines()];
  }

  /** Models in the repository and loaded ones, with their state (OIP repository index). */
  async repositoryIndex(): Promise<RepositoryModel[]> {
    const out = new Map<string, RepositoryModel>();
    for (const e of await this.catalog.index()) {
      out.set(e.name, { name: e.name, state: 'UNAVAILABLE', reason: this.versions.failed.get(e.name) ?? 'not loaded' });
    }
    for (const { name, version } of this.plane.serving()) out.set(name, { name, version, state: 'READY', reason: '' });
    for (const name of this.versions.loading) {
      if (!out.has(name) || out.get(name)!.state !== 'READY') out.set(name, { name, state: 'LOADING', reason: 'loading' });
    }
    return [...out.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---- load / unload ------------------------------------------------------------------------

  /** Loads a version from the catalog and makes it the active one. */
  load(name: string, opts: LoadOptions = {}): Promise<string> {
    return this.versions.load(name, opts);
  }

  /** See LiveVersions.loadVersion: load, warm and test on every plane, then one atomic switch. */
  loadVersion(source: VersionSource, opts: { asDefault?: boolean } = {}): Promise<string> {
    return this.versions.loadVersion(source, opts);
  }

  /** Whether the model is loaded here. */
  hasModel(name: string): boolean {
    return this.versions.hasModel(name);
  }

  /** Whether `version` is the model's default version here (what unversioned requests get without a route). */
  isDefault(name: string, version: string): boolean {
    return this.versions.isDefault(name, version);
  }

  /** See LiveVersions.prepareVersions: loads the versions a route is about to name. */
  prepareVersions(name: string, versions: string[]): Promise<void> {
    return this.versions.prepareVersions(name, versions);
  }

  /** Every live version of every loaded model (what the performance reporter writes rows for). */
  servedVersions(): Array<{ model: string; version: string }> {
    return this.versions.servedVersions();
  }

  /** The versions of a model serving by name, and which is the default (for operators and tests). */
  liveVersions(name: string): { versions: string[]; default?: string; route?: PublishedRoute } {
    return this.versions.liveVersions(name);
  }

  /** See LiveVersions.shadowReport: each shadow version's figures over every thread. */
  shadowReport(name: string): Promise<{ model: string; route_generation: number; shadows: Array<Record<string, unknown>> }> {
    return this.versions.shadowReport(name);
  }

  /** See LiveVersions.unload: the whole model, or one live version that nothing else needs. */
  unload(name: string, opts: { version?: string } = {}): Promise<void> {
    return this.versions.unload(name, opts);
  }

  /** See LiveVersions.setRoute: loads what the route names, then one atomic switch; its generation. */
  setRoute(name: string, spec: RouteSpec | undefined, registryGen?: number): Promise<number> {
    return this.versions.setRoute(name, spec, registryGen);
  }

  /**
   * A bandit version as an off-policy evaluation candidate: its arm probabilities per context
   * as it would decide now (its learner's state here, else where a new learner would start: the
   * latest checkpoint or the prior).
   */
  async candidatePolicy(model: string, version: string): Promise<CandidatePolicy> {
    const learner = this.learners.get(model, version);
    if (learner) return banditCandidate(learner.manifest, learner.snapshot().state);
    const m = (await this.catalog.open(model, version)).manifest;
    checkCandidate(m);
    return banditCandidate(m, (await this.learners.startState(m)).state);
  }

  /** Bytes of the shared arena reserved by pooled versions. */
  get arenaBytesInUse(): number {
    return this.arena?.bytesInUse ?? 0;
  }

  /** Pool threads currently running. */
  get poolThreads(): number {
    return this.pool?.threads ?? 0;
  }

  /** Pool workers that died with work in flight since start. */
  get lostWorkers(): number {
    return this.pool?.lostWorkers ?? 0;
  }

  /**
   * Stops the engine's own periodic reads of the I/O threads (drift collection) and waits for
   * one under way: a server stopping calls it before its threads end.
   */
  stopBackground(): Promise<void> {
    return this.driftCollection.stop();
  }

  /**
   * Drains and stops the main thread's plane and the pool (I/O threads are drained by their
   * own front ends first, src/io): readiness turns false at once, new requests get
   * SHUTTING_DOWN, accepted ones finish (up to drainTimeoutMs, then they fail), threads stop.
   */
  async close(): Promise<void> {
    if (!this.versions.close()) return;
    void this.driftCollection.stop();
    await this.plane.close();
    await this.learners.close();
    this.routeBandits.close();
    await this.pool?.close();
    await this.plane.dispose();
  }
}
