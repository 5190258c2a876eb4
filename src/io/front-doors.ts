/**
 * The front ends of one I/O thread: the HTTP server (OIP REST, KServe v1, WebSocket stream,
 * admin API) and the gRPC server over that thread's service, with the access check both use.
 * Every I/O thread builds the same pair; the admin service and the key check are the real ones
 * on the main thread and forwarding proxies elsewhere (src/io/io-thread.ts).
 */
import { keyFromHeaders, needsKey, requireScope } from '../auth/policy.js';
import type { ApiKeys } from '../auth/keys.js';
import type { Scope } from '../auth/scopes.js';
import type { Config } from '../config/index.js';
import { GrpcServer } from '../frontend/grpc/server.js';
import type { Authorize } from '../frontend/http/context.js';
import { HttpServer } from '../frontend/http/server.js';
import type { AdminService } from '../service/admin.js';
import type { Service } from '../service/service.js';
import { DashboardFeed, ViewerSlots } from '../service/dashboard-feed.js';
import type { DashboardService } from '../service/dashboard.js';

/** The access check: keys from the registry, needs from the config. */
export function authorizer(keys: Pick<ApiKeys, 'verify'>, config: Readonly<Config>, host: string): Authorize {
  // Decided once per scope: the listen address and auth mode are fixed for the server's life,
  // and a request that needs no key then costs no promise on the hot path.
  const needs: Record<Scope, boolean> = {
    predict: needsKey('predict', config, host),
    feedback: needsKey('feedback', config, host),
    admin: needsKey('admin', config, host),
  };
  return (scope: Scope, authorization: string) => {
    if (!needs[scope]) return undefined;
    return requireScope(keys as ApiKeys, keyFromHeaders(authorization || undefined), scope).then((k) => k.name);
  };
}

export interface FrontDoors {
  http: HttpServer;
  grpc: GrpcServer;
}

export interface FrontDoorOptions {
  serverVersion: string;
  /** What the admin API calls. */
  admin: AdminService;
  /** The key check of every front end. */
  keys: Pick<ApiKeys, 'verify'>;
  /**
   * The dashboard's snapshot (the control plane's; forwarded on another thread) and the viewer
   * count every thread shares (no dashboard without them).
   */
  dashboard?: { service: DashboardService; slots: SharedArrayBuffer };
}

export function frontDoors(service: Service, opts: FrontDoorOptions): FrontDoors {
  const config = service.config;
  const d = opts.dashboard;
  const dashboard = d && new DashboardFeed(() => d.service.snapshot(), new ViewerSlots(d.slots, config.dashboardMaxViewers), config.dashboardIntervalMs);
  return {
    http: new HttpServer(service, {
      serverVersion: opts.serverVersion,
      authorize: authorizer(opts.keys, config, config.httpHost),
      admin: { admin: opts.admin, maxUploadBytes: config.maxUploadBytes },
      dashboard,
    }),
    grpc: new GrpcServer(service, { serverVersion: opts.serverVersion, authorize: authorizer(opts.keys, config, config.grpcHost) }),
  };
}
