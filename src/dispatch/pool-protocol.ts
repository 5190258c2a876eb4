/**
 * Messages between the I/O thread and pool workers about model versions.
 *
 * Control goes out on a BroadcastChannel (piscina owns each worker's parentPort for its own
 * start-up message, so we cannot post there), replies come back through `parentPort` and
 * surface as the pool's 'message' event. Batches do not use messages at all: they go through
 * the dispatch board (board.ts) and the arena.
 */
import type { SerializedError } from '../errors.js';
import type { Manifest } from '../model/manifest.js';

export const TAG = '__sluice';

export type ControlMessage =
  /** Load (and smoke-test) a version; `to` addresses one thread, absent means all. */
  | { t: 'load'; to?: number; gen: number; manifest: Manifest; payload: Uint8Array }
  | { t: 'unload'; gen: number }
  /** Reply to `need` for a generation that no longer exists. */
  | { t: 'gone'; to: number; gen: number };

export type WorkerMessage =
  | { t: 'hello'; thread: number }
  | { t: 'loaded'; thread: number; gen: number; error?: SerializedError }
  | { t: 'need'; thread: number; gen: number };

export interface WorkerData {
  arena: SharedArrayBuffer;
  table: SharedArrayBuffer;
  board: SharedArrayBuffer;
  boardEntries: number;
  /** How long a session keeps polling the board after its last batch. */
  spinUs: number;
  channel: string;
  allowFixtures: boolean;
}
