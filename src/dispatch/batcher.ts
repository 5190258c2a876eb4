/**
 * Dynamic batcher of one pooled model version (Triton-style): requests queue here, are packed
 * into arena slots up to max_batch_size rows, and run on the pool.
 *
 * - Admission is bounded: a full queue refuses a request at once with OVERLOADED.
 * - A batch is sent when a slot is free and either it is full, or the oldest request has waited
 *   max_queue_delay_us (0 = send what is queued now). While every slot is busy requests pile up,
 *   so batches grow with load: the arena slots are the in-flight limit.
 * - A request whose deadline has passed when its batch is formed is dropped, not run.
 * - A batch fails together: every request in it gets the error.
 */
import { SluiceError } from '../errors.js';
import type { Tensor, TypedArray } from '../model/tensor.js';
import { arrayClassOf } from '../model/tensor.js';
import type { BatchTensor } from '../worker/runtimes/types.js';
import { H_GEN, H_ROWS, type RegionLayout, type SlotLayout } from './slot-layout.js';

export interface BatcherStats {
  /** Requests refused because the queue was full. */
  overloaded: number;
  /** Requests dropped at dequeue because their deadline had passed. */
  expired: number;
  batches: number;
  batchedRows: number;
}

interface Pending {
  inputs: Tensor[];
  rows: number;
  deadline: number;
  enqueuedAt: number;
  resolve: (outputs: BatchTensor[]) => void;
  reject: (e: SluiceError) => void;
  /** The arena slot of the batch it went into, once dispatched. */
  slot?: number;
}

export interface BatcherOptions {
  gen: number;
  layout: SlotLayout;
  maxQueueDelayUs: number;
  maxQueueSize: number;
  arena: SharedArrayBuffer;
  /** Byte offsets of this version's arena slots; their number is the in-flight limit. */
  slots: number[];
  /** Runs the batch in a slot on the pool. */
  run: (slot: number) => Promise<void>;
  /** Blocks up to `us` for the batch in `slot` to finish, settling it at once (Pool.waitSync). */
  waitSync?: (slot: number, us: number) => boolean;
  /** Observes each request's queue wait when its batch is sent (ms). */
  onQueued?: (queueMs: number) => void;
  /** Observes each batch: rows, compute time (send to completion, ms) and requests in it. */
  onBatch?: (rows: number, computeMs: number, requests: number) => void;
}

/** A typed-array view over the whole arena per datatype, for `set` and `slice` by element index. */
type ArenaViews = Map<string, TypedArray>;

function arenaViews(arena: SharedArrayBuffer, layout: SlotLayout): ArenaViews {
  const views: ArenaViews = new Map();
  for (const r of [...layout.inputs, ...layout.outputs]) {
    if (!views.has(r.spec.datatype)) {
      const Ctor = arrayClassOf(r.spec.datatype)!;
      views.set(r.spec.datatype, new Ctor(arena, 0, arena.byteLength / Ctor.BYTES_PER_ELEMENT));
    }
  }
  return views;
}

/**
 * A version whose recent batches took more than 1/SLOW_BATCH_FRACTION of the allowed wait is
 * not waited for synchronously (see Batcher.submit): 5 ms at the default 20 ms.
 */
const SLOW_BATCH_FRACTION = 4;
/** Weight of the newest batch in the moving average of batch times. */
const BATCH_MS_WEIGHT = 0.2;

export class Batcher {
  readonly stats: BatcherStats = { overloaded: 0, expired: 0, batches: 0, batchedRows: 0 };
  private readonly queue: Pending[] = [];
  private head = 0;
  private queuedRows = 0;
  private readonly free: number[];
  private readonly header: Int32Array;
  private readonly views: ArenaViews;
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private readonly maxRows: number;
  /** Recent batches' time from send to completion seen (ms, moving average); unknown at first. */
  private batchMs: number | undefined;

  constructor(private readonly o: BatcherOptions) {
    this.free = [...o.slots];
    this.header = new Int32Array(o.arena);
    this.views = arenaViews(o.arena, o.layout);
    this.maxRows = o.layout.maxRows;
  }

  /** Requests waiting (not yet in a batch). */
  get depth(): number {
    return this.queue.length - this.head;
  }

  /** Batches running on the pool. */
  get inFlight(): number {
    return this.o.slots.length - this.free.length;
  }

  /**
   * Queues one request (inputs in signature order, already checked) and resolves with its
   * outputs. Throws OVERLOADED synchronously when the queue is full. With `blockUs` > 0, a
   * request that went into a batch at once is waited for synchronously, up to that long, so
   * that its promise is already resolved when this returns (see InferRequest.blockUs) -- unless
   * this version's recent batches took more than a quarter of `blockUs`. Such a wait holds the
   * calling (I/O) thread for a whole batch per request: no other connection is read meanwhile,
   * so requests arriving together are no longer batched together and the thread answers at most
   * 1/(batch time) requests a second (measured: a 20 ms model at 100 req/s over 16 connections
   * fell to 49-95 answered/s, 1-4 s of backlog, with the 20 ms default), and a wait that often
   * runs out blocks for nothing.
   */
  submit(inputs: Tensor[], rows: number, deadline: number, blockUs = 0): Promise<BatchTensor[]> {
    if (this.depth >= this.o.maxQueueSize) {
      this.stats.overloaded++;
      throw new SluiceError('OVERLOADED', `queue of ${this.o.maxQueueSize} requests is full; retry later`);
    }
    let pending!: Pending;
    const promise = new Promise<BatchTensor[]>((resolve, reject) => {
      pending = { inputs, rows, deadline, enqueuedAt: performance.now(), resolve, reject };
      this.queue.push(pending);
      this.queuedRows += rows;
      this.pump();
    });
    if (blockUs > 0 && pending.slot !== undefined && this.quickEnoughToWaitFor(blockUs)) this.o.waitSync?.(pending.slot, blockUs);
    return promise;
  }

  /** Whether a synchronous wait of up to `blockUs` is worth it (see submit). */
  private quickEnoughToWaitFor(blockUs: number): boolean {
    return this.batchMs === undefined || this.batchMs * 1000 * SLOW_BATCH_FRACTION <= blockUs;
  }

  private shift(): Pending {
    const p = this.queue[this.head]!;
    this.queue[this.head] = undefined as unknown as Pending;
    this.head++;
    // Compact now and then so the array does not grow forever.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.queuedRows -= p.rows;
    return p;
  }

  private pump(): void {
    while (this.free.length > 0 && this.depth > 0) {
      if (this.queuedRows < this.maxRows && this.o.maxQueueDelayUs > 0) {
        const waitedUs = (performance.now() - this.queue[this.head]!.enqueuedAt) * 1000;
        if (waitedUs < this.o.maxQueueDelayUs) {
          this.arm(this.o.maxQueueDelayUs - waitedUs);
          return;
        }
      }
      this.dispatch();
    }
  }

  /** Wakes the batcher when the oldest request's delay is up. */
  private arm(us: number): void {
    if (this.timer) return;
    const wake = () => {
      this.timer = undefined;
      this.pump();
    };
    // setTimeout cannot sleep less than 1 ms; shorter delays re-check every loop turn.
    this.timer = us >= 1000 ? setTimeout(wake, us / 1000) : setImmediate(wake);
  }

  private writeInputs(slot: number, p: Pending, row: number): void {
    const { inputs } = this.o.layout;
    for (let i = 0; i < inputs.length; i++) {
      const r = inputs[i]!;
      const at = (slot + r.offset) / r.bytesPerElement + row * r.rowElements;
      (this.views.get(r.spec.datatype) as Float32Array).set(p.inputs[i]!.data as Float32Array, at);
    }
  }

  private readOutputs(slot: number, rows: number, row: number): BatchTensor[] {
    return this.o.layout.outputs.map((r: RegionLayout) => {
      const at = (slot + r.offset) / r.bytesPerElement + row * r.rowElements;
      const data = this.views.get(r.spec.datatype)!.slice(at, at + rows * r.rowElements) as TypedArray;
      return { data, shape: [rows, ...r.spec.shape.slice(1)] };
    });
  }

  /** Packs queued requests into one free slot and runs it. */
  private dispatch(): void {
    const slot = this.free.pop()!;
    const batch: Pending[] = [];
    const starts: number[] = [];
    let rows = 0;
    const now = performance.now();
    while (this.depth > 0) {
      const p = this.queue[this.head]!;
      if (p.deadline <= now) {
        this.shift();
        this.stats.expired++;
        p.reject(new SluiceError('DEADLINE_EXCEEDED', 'deadline passed while queued; the request was not run'));
        continue;
      }
      if (rows + p.rows > this.maxRows) break;
      this.shift();
      this.writeInputs(slot, p, rows);
      p.slot = slot;
      starts.push(rows);
      batch.push(p);
      this.o.onQueued?.(now - p.enqueuedAt);
      rows += p.rows;
    }
    if (batch.length === 0) {
      this.free.push(slot);
      return;
    }
    const base = slot >> 2;
    this.header[base + H_GEN] = this.o.gen;
    this.header[base + H_ROWS] = rows;
    this.stats.batches++;
    this.stats.batchedRows += rows;
    const sent = performance.now();
    this.o.run(slot).then(
      () => {
        const ms = performance.now() - sent;
        this.batchMs = this.batchMs === undefined ? ms : this.batchMs + BATCH_MS_WEIGHT * (ms - this.batchMs);
        this.o.onBatch?.(rows, ms, batch.length);
        for (let i = 0; i < batch.length; i++) {
          const p = batch[i]!;
          p.resolve(this.readOutputs(slot, p.rows, starts[i]!));
        }
        this.complete(slot);
      },
      (e: SluiceError) => {
        for (const p of batch) p.reject(e);
        this.complete(slot);
      },
    );
  }

  private complete(slot: number): void {
    this.free.push(slot);
    this.pump();
  }

  /** Fails everything queued (engine shutdown). In-flight batches finish on their own. */
  drainWith(e: SluiceError): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    while (this.depth > 0) {
      this.shift().reject(e);
    }
  }
}
