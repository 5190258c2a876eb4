/** What the main thread gives an I/O thread at its start (workerData), and what it may forward. */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/index.js';
import type { SharedMemory } from '../service/plane-types.js';
import { ADMIN_OPERATIONS } from '../service/admin.js';
import { DASHBOARD_OPERATIONS } from '../service/dashboard.js';

export interface IoThreadData {
  thread: number;
  config: Config;
  serverVersion: string;
  poolThreads: number;
  shared: SharedMemory;
  /** The control channel (transferred). */
  port: MessagePort;
  /** The dashboard's viewer count, shared by every thread (src/service/dashboard-feed.ts). */
  dashboardSlots: SharedArrayBuffer;
}

/**
 * What an I/O thread may forward to the main thread for its front ends: every admin service
 * operation (src/service/admin.ts; the registry, the keys and the engine that loads a route's
 * versions before it is stored all live there), the access check's key lookup and the
 * dashboard's snapshot (src/service/dashboard.ts: built once for every thread). Anything
 * else is refused there.
 */
export const ADMIN_METHODS = {
  admin: ADMIN_OPERATIONS,
  keys: ['verify'],
  dashboard: DASHBOARD_OPERATIONS,
} as const;

export type AdminTarget = keyof typeof ADMIN_METHODS;
