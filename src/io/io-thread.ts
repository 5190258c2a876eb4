/**
 * An I/O thread (worker_threads): its own data plane, HTTP and gRPC servers on the shared
 * ports, and a control channel to the main thread. Started by src/io/threads.ts, which also
 * says when to listen, to turn unready and to drain; the thread ends on its own once its front
 * ends and plane are closed (never terminated: see docs/io-threads.md on HTTP/2 sessions).
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import type { ApiKeys } from '../auth/keys.js';
import type { DashboardService } from '../service/dashboard.js';
import type { Config } from '../config/index.js';
import { SluiceError } from '../errors.js';
import { BoardClient } from '../dispatch/board-client.js';
import { DataPlane } from '../service/data-plane.js';
import type { ActivateOptions, VersionSpec } from '../service/plane-types.js';
import { forwardedAdmin } from '../service/admin.js';
import type { PublishedRoute } from '../routing/plane-route.js';
import { frontDoors } from './front-doors.js';
import { Rpc } from './rpc.js';
import { ThreadService } from './thread-service.js';
import { ADMIN_METHODS, type AdminTarget, type IoThreadData } from './protocol.js';
import { threadPool } from '../learn/shared-pool.js';

const data = workerData as IoThreadData;
const config = Object.freeze(data.config) as Readonly<Config>;
const board = data.shared.board
  ? new BoardClient({ board: data.shared.board.buffer, arena: data.shared.arena!, boardEntries: data.shared.board.entries, spinUs: data.shared.board.spinUs })
  : undefined;

let control: Rpc;
const plane = new DataPlane({
  config,
  table: data.shared.table,
  arena: data.shared.arena,
  dispatcher: board,
  thread: data.thread,
  onReleased: (gen) => control.notify('released', gen),
  // The chunk's buffers are shared ones of this thread's pool (DecisionChunkBuilder.take): the
  // message shares them, and the log sends them back ('recycle') once it is done with the chunk.
  onDecisions: (chunk) => control.notify('decisions', chunk),
});

/** A stand-in whose listed methods run on the main thread (the registry and keys live there). */
function forwarded<T>(target: AdminTarget): T {
  const out: Record<string, unknown> = {};
  for (const method of ADMIN_METHODS[target]) out[method] = (...args: unknown[]) => control.call(target, method, args);
  return out as T;
}

let doors: ReturnType<typeof frontDoors> | undefined;
let service: ThreadService;

control = new Rpc(data.port as MessagePort, {
  install: (spec: VersionSpec) => plane.install(spec),
  activate: (model: string, gen: number, o: ActivateOptions) => plane.activate(model, gen, o),
  retireVersions: (model: string, gens: number[]) => plane.retireVersions(model, gens),
  installRoute: (model: string, route: PublishedRoute) => plane.installRoute(model, route),
  routeStored: (model: string, gen: number) => plane.routeStored(model, gen),
  shadowSnapshots: (model: string) => plane.shadowSnapshots(model),
  unload: (model: string) => plane.unload(model),
  discard: (model: string, gen: number) => plane.discard(model, gen),
  markStarted: (models: string[]) => plane.markStarted(models),
  snapshot: () => service.snapshot(),
  windowSnapshot: (model: string, version: string, fromMs: number, toMs: number) => plane.windowSnapshot(model, version, fromMs, toMs),
  driftSamples: () => plane.takeDriftSamples(),
  reap: (alive: number[]) => board?.reap(new Set(alive), false),
  recycle: (bufs: SharedArrayBuffer[]) => {
    for (const b of bufs) threadPool.give(b);
  },
  listen: async (http: { host: string; port: number }, grpc: { host: string; port: number }) => {
    await doors!.http.listen(http.host, http.port);
    await doors!.grpc.listenShared(grpc.host, grpc.port);
  },
  unready: () => {
    doors!.http.unready();
    doors!.grpc.unready();
  },
  /** Stops accepting (with every other thread) and finishes in-flight requests. */
  drain: async (timeoutMs: number) => {
    await Promise.all([doors!.http.close(timeoutMs), doors!.grpc.close(timeoutMs)]);
  },
  /** After every thread drained: closes the connections left (idle ones), then ends. */
  close: async () => {
    doors!.http.closeConnections();
    await plane.close();
    board?.close(new SluiceError('SHUTTING_DOWN', 'engine is shutting down'));
    await plane.dispose();
    // Answered before the port closes; the thread then has nothing left and exits.
    setImmediate(() => {
      control.close(new SluiceError('SHUTTING_DOWN', 'I/O thread stopped'));
      (data.port as MessagePort).close();
    });
  },
}, `io-thread ${data.thread}`);

service = new ThreadService(plane, control, data.poolThreads);
doors = frontDoors(service, {
  serverVersion: data.serverVersion,
  admin: forwardedAdmin((operation, args) => control.call('admin', operation, args)),
  keys: forwarded<Pick<ApiKeys, 'verify'>>('keys'),
  dashboard: { service: forwarded<DashboardService>('dashboard'), slots: data.dashboardSlots },
});
control.notify('hello');
