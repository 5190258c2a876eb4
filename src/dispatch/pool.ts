/**
 * The worker pool: piscina threads that run pooled model versions on the shared arena.
 *
 * Batches travel through the dispatch board (board.ts): the pool keeps one session per worker
 * running; a BoardClient (board-client.ts) marks a slot's entry QUEUED; a session claims the
 * entry, computes the batch in place and marks it DONE or FAILED. The pool allocates the board
 * entries and has a client of its own for this (main) thread's batches; I/O threads run their
 * own clients over `boardBuffer`, with entries from `allocEntry`.
 *
 * Loading a version broadcasts it to every worker and waits until each one has loaded and
 * smoke-tested its own instance, so a version is warm everywhere before it is activated. A
 * worker that starts later (a replacement after a crash) says hello and is sent every live
 * version. A worker that dies fails the batches it was running with WORKER_LOST; piscina starts
 * a replacement and the process carries on.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { Piscina } from 'piscina';
import { fromSerialized, SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import type { Manifest } from '../model/manifest.js';
import { workerEntry } from '../paths.js';
import { B_EPOCH, B_STOP, boardBytes, markLost, ring, S_FREE, slotIndex, stateIndex } from './board.js';
import { BoardClient } from './board-client.js';
import { TAG, type ControlMessage, type WorkerData, type WorkerMessage } from './pool-protocol.js';

export interface PoolOptions {
  threads: number;
  arena: SharedArrayBuffer;
  table: SharedArrayBuffer;
  allowFixtures: boolean;
  /** How long an idle worker session keeps polling for batches before it sleeps. */
  spinUs: number;
  /** Board entries: the most arena slots that can exist at once. */
  boardEntries?: number;
  /** How long a load may wait for every worker to confirm it. */
  loadTimeoutMs?: number;
}

interface PendingLoad {
  waiting: Set<number>;
  confirmed: number;
  resolve: () => void;
  reject: (e: SluiceError) => void;
  timer: NodeJS.Timeout;
}

export class WorkerPool {
  private readonly piscina: Piscina;
  private readonly control: BroadcastChannel;
  private readonly board: Int32Array;
  /** Live pooled versions, sent to workers that start later. Payloads live in shared memory. */
  private readonly catalog = new Map<number, { manifest: Manifest; payload: Uint8Array }>();
  private readonly loads = new Map<number, PendingLoad>();
  /** Board entry of each arena slot attached in this thread, and the free entries. */
  private readonly entryOf = new Map<number, number>();
  private readonly freeEntries: number[];
  /** This (main) thread's producer side of the board. */
  /** This (main) thread's producer side of the board. */
  readonly client: BoardClient;
  private readonly lostListeners = new Set<(alive: number[]) => void>();
  private sessions = 0;
  private closing = false;
  /** The dispatch board, for BoardClients in other threads. */
  readonly boardBuffer: SharedArrayBuffer;
  readonly boardEntries: number;
  readonly spinUs: number;
  private readonly loadTimeoutMs: number;
  private readonly threadTarget: number;
  /** Workers that died with batches in flight. */
  lostWorkers = 0;

  constructor(opts: PoolOptions) {
    this.loadTimeoutMs = opts.loadTimeoutMs ?? 120_000;
    this.threadTarget = opts.threads;
    this.spinUs = opts.spinUs;
    const entries = opts.boardEntries ?? 4096;
    this.boardEntries = entries;
    const boardBuffer = new SharedArrayBuffer(boardBytes(entries));
    this.boardBuffer = boardBuffer;
    this.board = new Int32Array(boardBuffer);
    this.freeEntries = Array.from({ length: entries }, (_, i) => entries - 1 - i);
    this.client = new BoardClient({ board: boardBuffer, arena: opts.arena, boardEntries: entries, spinUs: opts.spinUs });
    const channel = `sluice-control-${randomUUID()}`;
    this.control = new BroadcastChannel(channel);
    this.control.unref();
    const workerData: WorkerData = {
      arena: opts.arena, table: opts.table, board: boardBuffer, boardEntries: entries,
      spinUs: opts.spinUs, channel, allowFixtures: opts.allowFixtures,
    };
    this.piscina = new Piscina({
      filename: workerEntry,
      minThreads: opts.threads,
      maxThreads: opts.threads,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      // 'async' keeps an idle worker's event loop running (Atomics.waitAsync instead of a
      // blocking wait) so it can receive load/unload messages between sessions.
      atomics: 'async',
      concurrentTasksPerWorker: 1,
      workerData,
    });
    this.piscina.on('message', (m: unknown) => this.onWorkerMessage(m));
    this.piscina.on('workerDestroy', () => this.reapDeadWorkers());
    // Without a listener an 'error' event would throw and take the process down.
    this.piscina.on('error', (e: unknown) => log.error('pool: worker error', errorFields(e)));
    this.ensureSessions();
  }

  get threads(): number {
    return this.piscina.threads.length;
  }

  /** Live workers' thread ids (a worker's threadId reads -1 once it has exited). */
  private threadIds(): number[] {
    return this.piscina.threads.map((t) => t.threadId).filter((id) => id >= 0);
  }

  private send(msg: ControlMessage): void {
    this.control.postMessage(msg);
    // Sessions check the epoch and yield to their event loop so the message is delivered.
    Atomics.add(this.board, B_EPOCH, 1);
    ring(this.board, this.threadTarget);
  }

  // ---- versions -----------------------------------------------------------------------------

  private onWorkerMessage(raw: unknown): void {
    const msg = (raw as Record<string, WorkerMessage> | null)?.[TAG];
    if (!msg) return;
    switch (msg.t) {
      case 'hello':
        for (const [gen, v] of this.catalog) this.send({ t: 'load', to: msg.thread, gen, ...v });
        // A new worker also owes an acknowledgement for loads still in progress.
        for (const [gen, l] of this.loads) if (this.catalog.has(gen)) l.waiting.add(msg.thread);
        break;
      case 'loaded': {
        const l = this.loads.get(msg.gen);
        if (!l) break;
        if (msg.error) {
          this.loads.delete(msg.gen);
          clearTimeout(l.timer);
          l.reject(fromSerialized(msg.error));
          break;
        }
        l.confirmed++;
        l.waiting.delete(msg.thread);
        if (l.waiting.size === 0) this.finishLoad(msg.gen);
        break;
      }
      case 'need': {
        const v = this.catalog.get(msg.gen);
        if (v) this.send({ t: 'load', to: msg.thread, gen: msg.gen, ...v });
        else this.send({ t: 'gone', to: msg.thread, gen: msg.gen });
        break;
      }
    }
  }

  private finishLoad(gen: number): void {
    const l = this.loads.get(gen);
    if (!l) return;
    this.loads.delete(gen);
    clearTimeout(l.timer);
    l.resolve();
  }

  /**
   * Loads a version in every worker and resolves once each has loaded and smoke-tested it.
   * On any failure the version is dropped everywhere and the error is thrown.
   */
  async load(gen: number, manifest: Manifest, payload: Uint8Array): Promise<void> {
    if (this.closing) throw new SluiceError('SHUTTING_DOWN', 'engine is shutting down');
    // One copy into shared memory; every worker reads the same bytes.
    const shared = new Uint8Array(new SharedArrayBuffer(payload.byteLength));
    shared.set(payload);
    this.catalog.set(gen, { manifest, payload: shared });
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.loads.delete(gen);
        reject(new SluiceError('MODEL_LOAD_FAILED', `${manifest.name}@${manifest.version}: workers did not confirm the load within ${this.loadTimeoutMs} ms`));
      }, this.loadTimeoutMs);
      this.loads.set(gen, { waiting: new Set(this.threadIds()), confirmed: 0, resolve, reject, timer });
    });
    this.send({ t: 'load', gen, manifest, payload: shared });
    try {
      await done;
    } catch (e) {
      this.unload(gen);
      throw e;
    }
  }

  /** Drops a version from every worker (call only when no batch of it is in flight). */
  unload(gen: number): void {
    this.catalog.delete(gen);
    this.send({ t: 'unload', gen });
  }

  // ---- board entries and batches ----------------------------------------------------------

  /**
   * Reserves a board entry for arena slot `slot`, for a BoardClient in any thread to `attach`.
   * Throws ARENA_EXHAUSTED when the board is full.
   */
  allocEntry(slot: number): number {
    const e = this.freeEntries.pop();
    if (e === undefined) throw new SluiceError('ARENA_EXHAUSTED', 'the dispatch board is full');
    Atomics.store(this.board, slotIndex(e), slot);
    Atomics.store(this.board, stateIndex(e), S_FREE);
    return e;
  }

  /** Takes a board entry back (its client detached it and no batch of it is in flight). */
  freeEntry(entry: number): void {
    this.freeEntries.push(entry);
  }

  /** Gives an arena slot a board entry so this thread's batches in it can be dispatched. */
  attach(slot: number): void {
    const e = this.allocEntry(slot);
    this.entryOf.set(slot, e);
    this.client.attach(slot, e);
  }

  /** Returns a slot's board entry (when its version is freed). */
  detach(slot: number): void {
    const e = this.entryOf.get(slot);
    if (e === undefined) return;
    this.entryOf.delete(slot);
    this.client.detach(slot);
    this.freeEntry(e);
  }

  /** Runs the batch in arena slot `slot` (attached here); see BoardClient.run. */
  run(slot: number): Promise<void> {
    return this.client.run(slot);
  }

  /** See BoardClient.waitSync. */
  waitSync(slot: number, us: number): boolean {
    return this.client.waitSync(slot, us);
  }

  /**
   * Calls `cb` with the live worker threads' ids whenever workers died with batches in flight
   * (of any client: their entries are already marked LOST, see board.ts markLost), so that
   * clients in other threads can `reap` at once. Returns a function that unsubscribes.
   */
  onWorkersLost(cb: (alive: number[]) => void): () => void {
    this.lostListeners.add(cb);
    return () => this.lostListeners.delete(cb);
  }

  /** Keeps one session per worker thread: at start, and again after a thread died. */
  private ensureSessions(): void {
    while (!this.closing && this.sessions < this.threadTarget) {
      this.sessions++;
      this.piscina.run(0).then(
        () => this.sessionEnded(),
        () => {
          // A session only fails when its thread dies.
          this.reapDeadWorkers();
          this.sessionEnded();
        },
      );
    }
  }

  private sessionEnded(): void {
    this.sessions--;
    this.ensureSessions();
  }

  /**
   * After a worker thread ended: fail the batches it was running (their board entries are
   * RUNNING with its thread id, which is no longer alive) and release the acknowledgements it
   * owed. Idempotent: called from piscina's workerDestroy event and from the dead session.
   * Entries of every client are marked LOST here, in shared memory, at once; this thread's
   * client settles its own now, other threads' clients on their next look at the board (they
   * are woken, and `onWorkersLost` listeners can make them `reap` at once).
   */
  private reapDeadWorkers(): void {
    const ids = this.threadIds();
    const alive = new Set(ids);
    const lost = markLost(this.board, this.boardEntries, (t) => !alive.has(t));
    this.client.reap(alive, this.closing);
    if (lost > 0 && !this.closing) {
      this.lostWorkers++;
      log.warn('pool: worker lost with batches in flight', { batches: lost });
    }
    if (lost > 0) {
      for (const cb of this.lostListeners) {
        try {
          cb(ids);
        } catch (e) {
          log.error('pool: workers-lost listener failed', errorFields(e));
        }
      }
    }
    // A load completes once every remaining worker confirmed, provided at least one did
    // (else a replacement's hello will).
    for (const [gen, l] of this.loads) {
      for (const t of [...l.waiting]) if (!alive.has(t)) l.waiting.delete(t);
      if (l.waiting.size === 0 && l.confirmed > 0) this.finishLoad(gen);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    Atomics.store(this.board, B_STOP, 1);
    ring(this.board, this.threadTarget);
    for (const [, l] of this.loads) {
      clearTimeout(l.timer);
      l.reject(new SluiceError('SHUTTING_DOWN', 'engine is shutting down'));
    }
    this.loads.clear();
    await this.piscina.destroy();
    // No worker is left: every batch still on the board, whichever thread queued it, fails.
    markLost(this.board, this.boardEntries, () => true, true);
    this.client.close(new SluiceError('SHUTTING_DOWN', 'engine is shutting down'));
    this.lostListeners.clear();
    this.control.close();
  }
}
