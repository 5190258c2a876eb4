/**
 * The I/O threads of a server (issue #11): the main thread serves the shared ports with its own
 * front ends, and `ioThreads - 1` worker threads (src/io/io-thread.ts) serve them too (with
 * SLUICE_CONTROL_THREAD=dedicated the main thread serves none and `ioThreads` workers serve them
 * all), each with its own data plane, uWebSockets.js app and grpc-js server; the kernel spreads connections over
 * the threads' SO_REUSEPORT sockets. The engine (control plane) publishes versions to every
 * thread through the link each thread gets here.
 *
 * Order matters: threads join the engine before any model loads (they are sent every version
 * from the first); they listen only after the start-up models are installed everywhere; they
 * stop accepting together, then drain (closing one thread's listener early would reset the
 * connections queued on its socket).
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import type { ApiKeys } from '../auth/keys.js';
import { SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { MetricsSnapshot } from '../metrics/snapshot.js';
import type { WindowSnapshot } from '../metrics/windows.js';
import type { DriftBatch } from '../analyze/drift-sampler.js';
import { reservePort, type PortReservation } from '../net/reuseport.js';
import { ioThreadEntry } from '../paths.js';
import type { FeedbackInput } from '../learn/feedback.js';
import type { Engine, LoadOptions, PlaneLink } from '../service/engine.js';
import type { DecisionChunk } from '../learn/decision-chunk.js';
import type { VersionSpec } from '../service/plane-types.js';
import type { AdminService } from '../service/admin.js';
import type { DashboardService } from '../service/dashboard.js';
import { ADMIN_METHODS, type AdminTarget, type IoThreadData } from './protocol.js';
import { Rpc } from './rpc.js';
import { registerPoolSender } from '../learn/shared-pool.js';

export interface IoThreadsOptions {
  /** Worker I/O threads to start (the main thread is not counted). */
  workers: number;
  serverVersion: string;
  /** The admin service and key check behind every thread's front ends (calls are forwarded here). */
  admin: AdminService;
  keys: Pick<ApiKeys, 'verify'>;
  /** The dashboard's snapshot (asked by every thread's viewers) and their shared viewer count. */
  dashboard: DashboardService;
  dashboardSlots: SharedArrayBuffer;
  /** A thread failed (an uncaught error ended it): the process is no longer whole. */
  onThreadFailed?: (thread: number, e: unknown) => void;
}

interface Thread {
  id: number;
  worker: Worker;
  rpc: Rpc;
  exited: Promise<void>;
}

export class IoThreads {
  private constructor(private readonly threads: Thread[]) {}

  get count(): number {
    return this.threads.length;
  }

  /**
   * Starts the worker I/O threads and attaches their data planes to the engine. Call before
   * the engine loads any model; the threads listen when `listen` is called.
   */
  static async start(engine: Engine, opts: IoThreadsOptions): Promise<IoThreads> {
    const threads = await Promise.all(Array.from({ length: opts.workers }, (_, i) => IoThreads.spawn(engine, opts, i + 1)));
    return new IoThreads(threads);
  }

  private static spawn(engine: Engine, opts: IoThreadsOptions, id: number): Promise<Thread> {
    const { port1, port2 } = new MessageChannel();
    const data: IoThreadData = {
      thread: id,
      config: { ...engine.config },
      serverVersion: opts.serverVersion,
      poolThreads: engine.poolThreads,
      shared: engine.shared,
      port: port2,
      dashboardSlots: opts.dashboardSlots,
    };
    const worker = new Worker(ioThreadEntry, { workerData: data, transferList: [port2], name: `sluice-io-${id}` });
    let hello!: () => void;
    const ready = new Promise<void>((resolve) => (hello = resolve));
    const allowed = (target: AdminTarget, method: string): boolean => (ADMIN_METHODS[target] as readonly string[]).includes(method);
    const forward = (target: AdminTarget, method: string, args: unknown[]): unknown => {
      if (!allowed(target, method)) throw new SluiceError('INTERNAL', `${target}.${method} cannot be forwarded`);
      return (opts[target] as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
    };
    const rpc = new Rpc(port1, {
      hello: () => hello(),
      released: (gen: number) => engine.released(id, gen),
      decisions: (chunk: DecisionChunk) => engine.acceptDecisions(chunk),
      snapshots: () => engine.snapshots(),
      repositoryIndex: () => engine.repositoryIndex(),
      load: (name: string, o: LoadOptions) => engine.load(name, o),
      unload: (name: string, o: { version?: string }) => engine.unload(name, o),
      shadowReport: (name: string) => engine.shadowReport(name),
      feedback: (items: FeedbackInput[]) => engine.feedback(items),
      admin: (method: string, args: unknown[]) => forward('admin', method, args),
      keys: (method: string, args: unknown[]) => forward('keys', method, args),
      dashboard: (method: string, args: unknown[]) => forward('dashboard', method, args),
    }, 'control');
    // Its decision chunks' buffers go back to it once the log is done with them (shared-pool.ts).
    const unregisterPool = registerPoolSender(worker.threadId, (bufs) => rpc.notify('recycle', bufs));
    const exited = new Promise<void>((resolve) => {
      worker.once('exit', (code) => {
        unregisterPool();
        rpc.close(new SluiceError('SHUTTING_DOWN', `I/O thread ${id} ended`));
        if (code !== 0) log.error('io: thread ended', { thread: id, code });
        resolve();
      });
    });
    worker.on('error', (e) => {
      // An I/O thread that dies takes its connections and its share of the port with it; the
      // process is no longer whole (`sluice serve` then stops, and its supervisor restarts it).
      log.error('io: thread failed', { thread: id, ...errorFields(e) });
      opts.onThreadFailed?.(id, e);
    });
    const link: PlaneLink = {
      thread: id,
      install: (spec: VersionSpec) => rpc.call('install', spec),
      activate: (model, gen, o) => rpc.call('activate', model, gen, o),
      retireVersions: (model, gens) => rpc.call('retireVersions', model, gens),
      installRoute: (model, route) => rpc.call('installRoute', model, route),
      routeStored: (model, gen) => rpc.call('routeStored', model, gen),
      shadowSnapshots: (model) => rpc.call('shadowSnapshots', model),
      unload: (model) => rpc.call('unload', model),
      discard: (model, gen) => rpc.call('discard', model, gen),
      markStarted: (models) => rpc.call('markStarted', models),
      snapshot: () => rpc.call<MetricsSnapshot>('snapshot'),
      windowSnapshot: (model, version, fromMs, toMs) => rpc.call<WindowSnapshot | undefined>('windowSnapshot', model, version, fromMs, toMs),
      driftSamples: () => rpc.call<DriftBatch[]>('driftSamples'),
      reap: (alive) => rpc.notify('reap', alive),
    };
    engine.attach(link);
    return Promise.race([
      ready.then(() => ({ id, worker, rpc, exited })),
      exited.then(() => {
        throw new SluiceError('INTERNAL', `I/O thread ${id} ended during start-up`);
      }),
    ]);
  }

  /** Every thread joins the shared ports' groups (after the main thread's front ends, when it serves). */
  async listen(http: { host: string; port: number }, grpc: { host: string; port: number }): Promise<void> {
    await Promise.all(this.threads.map((t) => t.rpc.call('listen', http, grpc)));
  }

  unready(): void {
    for (const t of this.threads) void t.rpc.call('unready').catch(() => undefined);
  }

  /** Drains every thread: stops accepting, finishes in-flight requests (up to `timeoutMs`). */
  async drain(timeoutMs: number): Promise<void> {
    await Promise.all(this.threads.map((t) => t.rpc.call('drain', timeoutMs).catch((e: unknown) => log.warn('io: thread drain failed', { thread: t.id, ...errorFields(e) }))));
  }

  /**
   * Ends every thread, drained or not (`drain` first, and the main thread's own, for a drain):
   * the connections left are closed, and each thread's plane; waits for the threads to exit.
   */
  async close(): Promise<void> {
    await Promise.all(this.threads.map(async (t) => {
      await t.rpc.call('close').catch((e: unknown) => log.warn('io: thread close failed', { thread: t.id, ...errorFields(e) }));
      await t.exited;
    }));
  }
}

/**
 * Holds the HTTP and gRPC ports for the threads to join: port 0 becomes a concrete port (a
 * uWebSockets.js app on port 0 cannot be joined), and a port held by another process fails here.
 */
export async function reserveServerPorts(httpHost: string, httpPort: number, grpcHost: string, grpcPort: number): Promise<{ http: PortReservation; grpc: PortReservation }> {
  const http = await reservePort(httpHost, httpPort);
  try {
    return { http, grpc: await reservePort(grpcHost, grpcPort) };
  } catch (e) {
    http.release();
    throw e;
  }
}
