/** What the main thread gives an I/O thread at its start (workerData), and what it may forward. */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/index.js';
import type { SharedMemory } from '../service/plane-types.js';
import { ADMIN_OPERATIONS } from '../service/admin.js';

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
 * What an I/O thread may forward to the main thread for its front ends: every admin service
 * operation (src/service/admin.ts; the registry, the keys and the engine that loads a route's
 * versions before it is stored all live there) and the access check's key lookup. Anything
 * else is refused there.
 */
export const ADMIN_METHODS = {
  admin: ADMIN_OPERATIONS,
  keys: ['verify'],
} as const;

export type AdminTarget = keyof typeof ADMIN_METHODS;
