/** What the main thread gives an I/O thread at its start (workerData), and what it may forward. */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/index.js';
import type { SharedMemory } from '../service/data-plane.js';

export interface IoThreadData {
  thread: number;
  config: Config;
  serverVersion: string;
  poolThreads: number;
  shared: SharedMemory;
  /** The control channel (transferred). */
  port: MessagePort;
}

/**
 * The registry, key and route operations an I/O thread's admin API may forward to the main
 * thread (exactly what src/frontend/http/routes/admin.ts and the access check call); anything
 * else is refused there. Routes are set on the main thread because that is where the engine
 * loads the versions a route needs before it is stored (src/routing/control.ts).
 */
export const ADMIN_METHODS = {
  registry: ['listModels', 'showModel', 'versions', 'getVersion', 'register', 'promote', 'rollback', 'audit'],
  keys: ['verify', 'list', 'create'],
  routes: ['get', 'set', 'clear'],
} as const;

export type AdminTarget = keyof typeof ADMIN_METHODS;
