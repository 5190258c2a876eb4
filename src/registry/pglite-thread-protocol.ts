/**
 * The messages between the embedded database's thread (pglite-thread-worker.ts) and the Db
 * that the rest of the process uses (pglite-thread.ts), and how errors cross between them:
 * structured cloning keeps an Error's message but drops the fields the callers classify it by
 * (a SluiceError's code, a SQLSTATE and its severity, ENOSPC), so errors are sent as plain
 * fields and rebuilt.
 */
import { SluiceError, type ErrorCode } from '../errors.js';
import type { CheckpointStats } from './pglite-checkpointer.js';

export type Request =
  | { id: number; op: 'query'; sql: string; params: readonly unknown[]; tx?: number }
  | { id: number; op: 'write'; sql: string; params: readonly unknown[] }
  | { id: number; op: 'exec'; sql: string; tx?: number }
  | { id: number; op: 'begin' }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'listen'; channel: string }
  | { id: number; op: 'unlisten'; listen: number }
  | { id: number; op: 'nice'; nice: number }
  | { id: number; op: 'close' };

export type Reply =
  | { t: 'ready' }
  | { t: 'open-failed'; error: WireError }
  | { t: 'reply'; id: number; result: unknown }
  | { t: 'fail'; id: number; error: WireError }
  | { t: 'notify'; listen: number; payload: string }
  /** Unasked, after each of the checkpointer's checks (pglite-checkpointer.ts). */
  | { t: 'checkpoints'; stats: CheckpointStats };

export interface WireError {
  name: string;
  message: string;
  /** Set for a SluiceError: its catalogue code (in `code`). */
  sluice?: boolean;
  code?: unknown;
  severity?: unknown;
  detail?: unknown;
  constraint?: unknown;
  cause?: WireError;
}

/** The fields callers look at, down the cause chain (a few levels). */
export function toWire(e: unknown, depth = 0): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const x = e as Error & { code?: unknown; severity?: unknown; detail?: unknown; constraint?: unknown };
  const w: WireError = { name: x.name, message: x.message };
  if (e instanceof SluiceError) w.sluice = true;
  for (const k of ['code', 'severity', 'detail', 'constraint'] as const) {
    const v = x[k];
    if (typeof v === 'string' || typeof v === 'number') w[k] = v;
  }
  if (x.cause !== undefined && depth < 4) w.cause = toWire(x.cause, depth + 1);
  return w;
}

export function fromWire(w: WireError): Error {
  const cause = w.cause ? fromWire(w.cause) : undefined;
  if (w.sluice) return new SluiceError(w.code as ErrorCode, w.message, cause ? { cause } : undefined);
  const e = new Error(w.message, cause ? { cause } : undefined) as Error & Record<string, unknown>;
  e.name = w.name;
  for (const k of ['code', 'severity', 'detail', 'constraint'] as const) if (w[k] !== undefined) e[k] = w[k];
  return e;
}
