/**
 * The worker pool: piscina threads that run pooled model versions on the shared arena.
 *
 * Batches travel through the dispatch board (board.ts): `run` marks a slot's entry QUEUED and
 * makes sure enough worker sessions are running; a session claims the entry, computes the
 * batch in place and marks it DONE or FAILED; this thread learns of completions through
 * `Atomics.waitAsync` on the board's completion counter.
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
import { B_DONE, B_EPOCH, B_QUEUED, B_STOP, boardBytes, ring, S_DONE, S_FAILED, S_FREE, S_QUEUED, S_RUNNING, slotIndex, stateIndex } from './board.js';
import { TAG, type ControlMessage, type WorkerData, type WorkerMessage } from './pool-protocol.js';
import { readSlotError } from './slot-layout.js';

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

interface PendingBatch {
  slot: number;
  resolve: () => void;
  reject: (e: SluiceError) => void;
}

/** Safety net: look for completions this often even if a notification was missed. */
const SCAN_INTERVAL_MS = 20;

export class WorkerPool {
  private readonly piscina: Piscina;
  private readonly control: BroadcastChannel;
  private readonly board: Int32Array;
  private readonly arena: SharedArrayBuffer;
  /** Live pooled versions, sent to workers that start later. Payloads live in shared memory. */
  private readonly catalog = new Map<number, { manifest: Manifest; payload: Uint8Array }>();
  private readonly loads = new Map<number, PendingLoad>();
  /** Board entry of each attached arena slot, and the free entries. */
  private readonly entryOf = new Map<number, number>();
  private readonly freeEntries: number[];
  /** Batches queued or running, by board entry. */
  private readonly batches = new Map<number, PendingBatch>();
  private sessions = 0;
  private armed = false;
  private polling = false;
  private pollUntil = 0;
  private readonly spinMs: number;
  private safetyTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly loadTimeoutMs: number;
  private readonly threadTarget: number;
  /** Workers that died with batches in flight. */
  lostWorkers = 0;

  constructor(opts: PoolOptions) {
    this.loadTimeoutMs = opts.loadTimeoutMs ?? 120_000;
    this.threadTarget = opts.threads;
    this.spinMs = opts.spinUs / 1000;
    this.arena = opts.arena;
    const entries = opts.boardEntries ?? 4096;
    const boardBuffer = new SharedArrayBuffer(boardBytes(entries));
    this.board = new Int32Array(boardBuffer);
    this.freeEntries = Array.from({ length: entries }, (_, i) => entries - 1 - i);
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

  // ---- batches ------------------------------------------------------------------------------

  /** Gives an arena slot a board entry so batches in it can be dispatched. */
  attach(slot: number): void {
    const e = this.freeEntries.pop();
    if (e === undefined) throw new SluiceError('ARENA_EXHAUSTED', 'the dispatch board is full');
    this.entryOf.set(slot, e);
    Atomics.store(this.board, slotIndex(e), slot);
    Atomics.store(this.board, stateIndex(e), S_FREE);
  }

  /** Returns a slot's board entry (when its version is freed). */
  detach(slot: number): void {
    const e = this.entryOf.get(slot);
    if (e === undefined) return;
    this.entryOf.delete(slot);
    this.freeEntries.push(e);
  }

  /** Runs the batch in arena slot `slot`; rejects with the batch's coded error. */
  run(slot: number): Promise<void> {
    if (this.closing) return Promise.reject(new SluiceError('SHUTTING_DOWN', 'engine is shutting down'));
    const e = this.entryOf.get(slot);
    if (e === undefined) return Promise.reject(new SluiceError('INTERNAL', 'arena slot has no board entry'));
    return new Promise<void>((resolve, reject) => {
      this.batches.set(e, { slot, resolve, reject });
      Atomics.store(this.board, stateIndex(e), S_QUEUED);
      Atomics.add(this.board, B_QUEUED, 1);
      ring(this.board);
      this.arm();
    });
  }

  /**
   * Blocks this thread (Atomics.wait) until the batch in `slot` is done or failed, for at most
   * `us` microseconds; when it finished, settles it at once, so that its callbacks run in the
   * microtask queue of the current turn. Returns whether it finished. For HTTP/1.1 (see
   * InferRequest.blockUs): uWebSockets.js closes a connection whose next pipelined request it
   * parses while an earlier answer is still pending, so that answer must be sent before the
   * request handler returns.
   */
  waitSync(slot: number, us: number): boolean {
    const e = this.entryOf.get(slot);
    if (e === undefined || !this.batches.has(e)) return false;
    const until = performance.now() + us / 1000;
    for (;;) {
      const seen = Atomics.load(this.board, B_DONE);
      const state = Atomics.load(this.board, stateIndex(e));
      if (state === S_DONE || state === S_FAILED) {
        this.scan();
        return true;
      }
      const left = until - performance.now();
      if (left <= 0) return false;
      // Woken by any completion (the counter moves); re-check this entry's state.
      Atomics.wait(this.board, B_DONE, seen, left);
    }
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
   * Watches for completions. For up to the spin window after a dispatch, the board is polled
   * once per event-loop turn (setImmediate keeps the loop awake without blocking I/O), because
   * a sleeping I/O thread pays the same wake-up cost as a sleeping worker. After that it waits
   * on the completion counter with Atomics.waitAsync.
   */
  private arm(): void {
    if (this.batches.size === 0) return;
    this.pollUntil = performance.now() + this.spinMs;
    if (!this.polling && this.spinMs > 0) {
      this.polling = true;
      setImmediate(this.poll);
    }
    this.armWait();
  }

  private readonly poll = (): void => {
    this.scan();
    if (this.batches.size > 0 && performance.now() < this.pollUntil) {
      setImmediate(this.poll);
    } else {
      this.polling = false;
    }
  };

  /** Waits (without blocking) for the next completion, then settles finished batches. */
  private armWait(): void {
    if (this.armed || this.batches.size === 0) return;
    this.armed = true;
    this.safetyTimer ??= setInterval(() => this.scan(), SCAN_INTERVAL_MS);
    const seen = Atomics.load(this.board, B_DONE);
    const w = Atomics.waitAsync(this.board, B_DONE, seen);
    const wake = () => {
      this.armed = false;
      this.scan();
      this.armWait();
    };
    if (w.async) void w.value.then(wake);
    else queueMicrotask(wake);
  }

  private scan(): void {
    for (const [e, b] of this.batches) {
      const state = Atomics.load(this.board, stateIndex(e));
      if (state === S_DONE) {
        this.settle(e);
        b.resolve();
      } else if (state === S_FAILED) {
        const err = readSlotError(this.arena, b.slot);
        this.settle(e);
        b.reject(err);
      }
    }
    if (this.batches.size === 0 && this.safetyTimer) {
      clearInterval(this.safetyTimer);
      this.safetyTimer = undefined;
    }
  }

  private settle(e: number): void {
    this.batches.delete(e);
    Atomics.store(this.board, stateIndex(e), S_FREE);
  }

  /**
   * After a worker thread ended: fail the batches it was running (their board entries are
   * RUNNING with its thread id, which is no longer alive) and release the acknowledgements it
   * owed. Idempotent: called from piscina's workerDestroy event and from the dead session.
   */
  private reapDeadWorkers(): void {
    const alive = new Set(this.threadIds());
    let lost = 0;
    for (const [e, b] of [...this.batches]) {
      const state = Atomics.load(this.board, stateIndex(e));
      if ((state & 0xf) !== S_RUNNING || alive.has(state >>> 4)) continue;
      this.settle(e);
      lost++;
      b.reject(this.closing
        ? new SluiceError('SHUTTING_DOWN', 'engine is shutting down')
        : new SluiceError('WORKER_LOST', 'the worker running this request died; it was replaced, retry the request'));
    }
    if (lost > 0 && !this.closing) {
      this.lostWorkers++;
      log.warn('pool: worker lost with batches in flight', { batches: lost });
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
    for (const [e, b] of [...this.batches]) {
      this.settle(e);
      b.reject(new SluiceError('SHUTTING_DOWN', 'engine is shutting down'));
    }
    if (this.safetyTimer) clearInterval(this.safetyTimer);
    this.control.close();
  }
}
