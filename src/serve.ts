/**
 * Starting and stopping a whole server: the registry (PGlite or PostgreSQL, artifacts in a
 * directory or S3), the engine serving every model's production version, the HTTP front end
 * (with the WebSocket stream and the admin API) and the gRPC front end. Used by `npm start`
 * (main.ts) and `sluice serve`.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from './config/index.js';
import type { GrpcServer } from './frontend/grpc/server.js';
import type { HttpServer } from './frontend/http/server.js';
import { frontDoors } from './io/front-doors.js';
import { DecisionLog } from './learn/decision-log.js';
import { FeedbackIntake } from './learn/feedback.js';
import { IoThreads, reserveServerPorts } from './io/threads.js';
import { errorFields, log } from './log.js';
import { projectRoot } from './paths.js';
import { RegistryCatalog } from './registry/catalog.js';
import { importDirectory } from './registry/import.js';
import { openRegistry, type RegistryServices } from './registry/open.js';
import type { Registry } from './registry/registry.js';
import { adminService } from './service/admin.js';
import { dashboardService } from './service/dashboard.js';
import { Engine } from './service/engine.js';
import { LearnedSync } from './learn/learned-sync.js';
import { ExperimentLoop } from './control/experiments/loop.js';
import { DeploymentLoop } from './control/deployments/loop.js';
import { shadowReader, windowReader } from './control/deployments/windows.js';
import { AlertLoop } from './control/alerts/loop.js';
import { registryFollower } from './control/follow-registry.js';
import { logChannel } from './control/alerts/notice.js';
import { serverSignals } from './control/alerts/server-signals.js';
import { Retraining } from './control/retraining/retraining.js';
import { WebhookChannel } from './control/alerts/webhook.js';
import { PerformanceReporter } from './control/performance.js';
import { defaultJudge } from './learn/learners.js';
import { sameRoute } from './routing/route.js';

export const version = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

export interface Running {
  config: Readonly<Config>;
  engine: Engine;
  /** The decision log and feedback intake (src/learn). */
  decisions: DecisionLog;
  feedback: FeedbackIntake;
  registry: RegistryServices;
  /** The main thread's front ends (none with a dedicated control thread). */
  http?: HttpServer;
  grpc?: GrpcServer;
  httpPort: number;
  grpcPort: number;
  /** I/O threads serving the ports (the main thread included unless the control thread is dedicated). */
  ioThreads: number;
  /**
   * Drains: readiness false on both front ends at once; for `graceMs` (default 0) the listeners
   * still accept connections and answer everything; then they close, in-flight requests finish
   * (up to SLUICE_DRAIN_TIMEOUT_MS), and the engine and the registry stop.
   */
  stop(opts?: { graceMs?: number }): Promise<void>;
}

const IMPORT_ACTOR = 'sluice-import';

/**
 * Registers the repository directory's versions (already registered ones are skipped), and
 * makes the latest version production for each model that has no production version yet.
 */
async function importRepository(registry: Registry, dir: string): Promise<void> {
  let imported;
  try {
    imported = await importDirectory(registry, dir, { actor: IMPORT_ACTOR, reason: 'imported from the model repository at start' });
  } catch (e) {
    if ((e as { code?: string }).code === 'MODEL_NOT_FOUND') return; // an empty directory
    throw e;
  }
  const production = await registry.productionVersions();
  const latest = new Map<string, string>();
  for (const v of imported) latest.set(v.model, v.version);
  for (const [model, v] of latest) {
    if (production.has(model)) continue;
    await registry.promote(model, v, 'production', { actor: IMPORT_ACTOR, reason: 'first version imported from the model repository' });
  }
}

export async function serve(overrides: Partial<Config> = {}, onThreadFailed?: (thread: number, e: unknown) => void): Promise<Running> {
  const config = loadConfig(overrides);
  const services = await openRegistry(config);
  try {
    if (services.initialAdminKey) {
      // Printed once, to the terminal (never to the log): there is no other way to learn it.
      process.stdout.write(`sluice: created the admin API key "${services.initialAdminKey.name}" (shown once, keep it): ${services.initialAdminKey.secret}\n`);
    }
    if (config.importModels && config.startupModels !== 'none') await importRepository(services.registry, config.modelRepository);
  } catch (e) {
    await services.close();
    throw e;
  }
  // Decisions and feedback are batched on the main thread (src/learn); their database is
  // PostgreSQL or the embedded one's own thread (src/registry/pglite-thread.ts).
  const decisions = new DecisionLog(services.db, { capacity: config.decisionsBuffer, batchSize: config.decisionsBatchSize, flushMs: config.decisionsFlushMs });
  const feedback = new FeedbackIntake({
    db: services.db, dataDir: config.dataDir, decisions, joinWindowMs: config.feedbackJoinWindowMs,
    batchSize: config.feedbackBatchSize, flushMs: config.feedbackFlushMs, concurrency: config.feedbackConcurrency,
  });
  const closeLearning = async (): Promise<void> => {
    await feedback.close();
    await decisions.close();
  };
  try {
    await feedback.start();
  } catch (e) {
    await closeLearning();
    await services.close();
    throw e;
  }
  // Learned state (bandits, online models): checkpoints in the artifact store, deltas between
  // replicas through the database.
  const sync = new LearnedSync(services.db, services.artifacts, { replica: config.replicaId, syncMs: config.learnerSyncMs, checkpointMs: config.checkpointIntervalMs });
  const engine = Engine.create(config, new RegistryCatalog(services.registry), { judge: defaultJudge, restore: sync.restore, started: sync.started, retired: sync.retired });
  engine.attachLearning({ decisions, feedback });
  engine.setDatabaseLines(() => services.db.metricLines?.() ?? []);
  // What every thread's admin API calls (the registry, keys, and routes put in force here).
  // Retraining requests: recorded, and POSTed to the trainer's webhooks (alerts and schedules trigger them too).
  const retrainHooks = new WebhookChannel(config.retrainWebhooks);
  const retraining = new Retraining({ db: services.db, webhook: retrainHooks, cooldownMs: config.retrainCooldownMs, intervalMs: config.retrainIntervalMs });
  const admin = adminService({ registry: services.registry, keys: services.keys, engine, retraining });
  // The dashboard's snapshot, built here for every I/O thread's viewers; their count is shared.
  const dashboard = { service: dashboardService({ admin, engine, intervalMs: config.dashboardIntervalMs }), slots: new SharedArrayBuffer(4) };
  let threads: IoThreads | undefined;
  let ports: Awaited<ReturnType<typeof reserveServerPorts>> | undefined;
  let http: HttpServer | undefined;
  let grpc: GrpcServer | undefined;
  let httpPort: number;
  let grpcPort: number;
  // A dedicated control thread serves no requests: the control plane's work (decision and
  // feedback batching, learners, drift collection, controllers, GC of their garbage) then never
  // holds a connection's answer, at the price of one more thread than cores (docs/io-threads.md).
  const dedicated = config.controlThread === 'dedicated';
  const workers = dedicated ? config.ioThreads : config.ioThreads - 1;
  try {
    // I/O threads join before any model loads, so that every version reaches every thread.
    if (workers > 0) {
      threads = await IoThreads.start(engine, {
        workers, serverVersion: version, admin, keys: services.keys,
        dashboard: dashboard.service, dashboardSlots: dashboard.slots,
        onThreadFailed: (id, e) => onThreadFailed?.(id, e),
      });
    }
    await engine.loadStartupModels();
    if (!dedicated) ({ http, grpc } = frontDoors(engine, { serverVersion: version, admin, keys: services.keys, dashboard }));
    if (threads) {
      // Every thread's app and gRPC socket join one group per port: hold the ports (port 0
      // becomes a concrete one) until all listen.
      ports = await reserveServerPorts(config.httpHost, config.httpPort, config.grpcHost, config.grpcPort);
      httpPort = http ? await http.listen(config.httpHost, ports.http.port) : ports.http.port;
      grpcPort = grpc ? await grpc.listenShared(config.grpcHost, ports.grpc.port) : ports.grpc.port;
      await threads.listen({ host: config.httpHost, port: httpPort }, { host: config.grpcHost, port: grpcPort });
    } else {
      if (!http || !grpc) throw new Error('unreachable: a dedicated control thread always has I/O threads');
      httpPort = await http.listen(config.httpHost, config.httpPort);
      grpcPort = await grpc.listen(config.grpcHost, config.grpcPort);
    }
  } catch (e) {
    await threads?.drain(0);
    await threads?.close();
    await engine.close();
    sync.close();
    await closeLearning();
    await services.close();
    throw e;
  } finally {
    ports?.http.release();
    ports?.grpc.release();
  }
  // Promotions and rollbacks made anywhere reach this replica: LISTEN/NOTIFY plus a periodic
  // reconcile. Each goes through the atomic hot swap, on every I/O thread.
  const serving = (name: string) => config.startupModels === 'all' || (Array.isArray(config.startupModels) && config.startupModels.includes(name));
  const follower = registryFollower(services.db, services.registry, engine, serving);
  services.watcher.onChange((model, v) => follower.followProduction(model, v));
  // Routes set anywhere (this replica's admin API included) are put in force here: the versions
  // they name are loaded first; a failure is offered again by the next reconcile.
  services.watcher.onRouteChange(async (model, route, generation) => {
    if (!serving(model)) return;
    const current = engine.hasModel(model) ? engine.liveVersions(model).route : undefined;
    if (route === undefined ? current === undefined : current !== undefined && current.registryGen === generation && sameRoute(current, route)) return;
    if (route === undefined) await follower.clearRoute(model);
    else await engine.setRoute(model, route, generation);
  });
  await services.watcher.start();
  // Experiments: every replica reports its serving figures; one at a time analyses each one.
  const experiments = new ExperimentLoop({
    db: services.db, intervalMs: config.experimentIntervalMs, replica: `${config.replicaId}:${process.pid}:${Date.now()}`,
    metrics: async () => (await engine.wholeMetrics()).metrics,
    routeCleared: (model) => follower.clearRoute(model),
  });
  experiments.start();
  // Deployments: one replica at a time drives each (canary steps, blue-green bake, shadow rule).
  const deployments = new DeploymentLoop({
    db: services.db, intervalMs: config.deploymentIntervalMs,
    window: windowReader(engine), shadow: shadowReader(engine),
    predictions: (model, version, sinceMs) => engine.predictionsSince(model, version, sinceMs),
    routeChanged: async (model, route, generation) => {
      if (!engine.hasModel(model)) return;
      if (route) await engine.setRoute(model, route, generation);
      else await follower.clearRoute(model);
    },
  });
  deployments.start();
  // Alerts: one replica at a time evaluates the rules (sources: this replica's windows and
  // feedback log); notices go to the log and the webhooks.
  const webhooks = new WebhookChannel(config.alertWebhooks);
  const signals = serverSignals({
    windowStats: (model, version, seconds) => engine.windowStats(model, version, seconds),
    servedVersions: () => engine.servedVersions(),
    feedbackLogBytes: () => feedback.stats.localLogBytes,
    sloMs: config.latencySloMs,
    driftDetected: (model, version) => engine.drift.driftDetected(model, version),
    learnerUnstable: (model, version, windowMs) => engine.learners.unstable(model, version, windowMs),
  });
  const alerts = new AlertLoop({ db: services.db, signals, channels: [logChannel, webhooks, retraining.alertChannel], intervalMs: config.alertIntervalMs });
  alerts.start();
  retraining.start();
  // Performance snapshots of every served version to the registry (model_performance).
  const performance = new PerformanceReporter({
    intervalMs: config.performanceIntervalMs, replica: config.replicaId,
    metrics: async () => (await engine.wholeMetrics()).metrics,
    served: () => engine.servedVersions(),
    record: (model, v, row) => services.registry.recordPerformance(model, v, row),
  });
  performance.start();
  // Routes in force before this replica says it serves (the watcher reports them too, but in
  // its own time): a unit must get its variant from the first request after a restart.
  try {
    for (const [model, r] of await services.registry.routes()) {
      if (!serving(model) || !engine.hasModel(model)) continue;
      await engine.setRoute(model, r.spec, r.generation).catch((e: unknown) => log.error('sluice: route not put in force at start', { model, ...errorFields(e) }));
    }
  } catch (e) {
    log.warn('sluice: routes not read at start (the watcher will catch up)', errorFields(e));
  }
  const models = (await engine.repositoryIndex()).filter((m) => m.state === 'READY').map((m) => `${m.name}@${m.version}`);
  await services.db.yieldToServing?.();
  log.info('sluice: serving', { url: `http://${config.httpHost}:${httpPort}`, grpc: `${config.grpcHost}:${grpcPort}`, ioThreads: config.ioThreads, controlThread: config.controlThread, models, registry: config.databaseUrl ? 'postgresql' : 'pglite' });
  return {
    config, engine, decisions, feedback, registry: services, http, grpc, httpPort, grpcPort,
    ioThreads: config.ioThreads,
    async stop({ graceMs = 0 } = {}) {
      http?.unready();
      grpc?.unready();
      threads?.unready();
      if (graceMs > 0) {
        // Kubernetes keeps routing to a pod for a while after SIGTERM (endpoints and load
        // balancers update asynchronously): refusing connections now would reset those clients.
        log.info('sluice: not ready, still serving', { graceMs });
        await new Promise((r) => setTimeout(r, graceMs));
      }
      log.info('sluice: draining', { inFlight: (http?.ctx.inFlight ?? 0) + (grpc?.inFlight ?? 0) });
      // Every thread stops accepting at the same moment, then drains.
      await Promise.all([http?.close(config.drainTimeoutMs), grpc?.close(config.drainTimeoutMs), threads?.drain(config.drainTimeoutMs)]);
      // Every thread has drained: the connections left (idle keep-alive ones) close now, and
      // the I/O threads end.
      http?.closeConnections();
      // What reads the threads' figures (the control loops, drift collection) stops before the
      // threads end: a round reading them afterwards got no value, which an alert round took
      // for its condition no longer holding (a firing alert resolved, and announced so).
      await experiments.close();
      await deployments.close();
      await alerts.close();
      await performance.close();
      await engine.stopBackground();
      await threads?.close();
      await webhooks.close();
      await retraining.close();
      await retrainHooks.close();
      // The engine's learners save their last checkpoints while the database is still open.
      await engine.close();
      sync.close();
      await closeLearning();
      await services.close();
      log.info('sluice: stopped');
    },
  };
}

/**
 * Runs until SIGTERM/SIGINT, then drains and exits 0 (a second signal exits 1 at once). SIGTERM
 * (what Kubernetes, Docker and systemd send) waits SLUICE_DRAIN_GRACE_MS with readiness false
 * before closing the listeners; SIGINT (Ctrl-C in a terminal, where no load balancer is
 * involved) skips that grace period and only lets in-flight requests finish.
 */
export async function serveUntilSignalled(overrides: Partial<Config> = {}): Promise<void> {
  // The handlers come first: until one is installed a signal kills the process outright (the
  // default action), and a loaded machine can hold this thread between the "serving" line and
  // the next statement long enough for a signal sent on that line to land there.
  let running: Running | undefined;
  let signalled: string | undefined;
  const stop = async (r: Running, graceMs: number) => {
    await r.stop({ graceMs });
    process.exit(process.exitCode ?? 0);
  };
  const onSignal = (signal: string) => {
    if (signalled) {
      log.warn('sluice: second signal, exiting now', { signal });
      process.exit(1);
    }
    signalled = signal;
    // Not serving yet: no load balancer sends here, so no grace period once start-up ends.
    const graceMs = running && signal === 'SIGTERM' ? running.config.drainGraceMs : 0;
    log.info('sluice: signal', { signal, graceMs, ...(running ? {} : { starting: true }) });
    if (running) void stop(running, graceMs);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  try {
    // An I/O thread that died leaves a process that is no longer whole: stop (exit 1 once
    // drained), and let the supervisor start a fresh one.
    running = await serve(overrides, () => {
      process.exitCode = 1;
      onSignal('SIGTERM');
    });
  } catch (e) {
    log.error('sluice: failed to start', errorFields(e));
    process.exit(1);
  }
  if (signalled) await stop(running, 0);
}
