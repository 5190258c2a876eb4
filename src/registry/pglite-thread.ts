/**
 * The embedded database run in a thread of its own: the Db the server uses on the embedded
 * defaults. PGlite executes each statement synchronously in WebAssembly (and here with V8's
 * baseline compiler only, for memory: pglite-settings.ts), so in the thread that calls it a
 * statement blocks the event loop for its whole duration. On the main thread, which is also an
 * I/O thread, group commits of decisions and feedback (milliseconds per batch) then stalled
 * every request that thread was serving: at 2,000 routed req/s the open-loop p99 went from
 * ~0.5 to ~3.5 ms (`npm run bench -- routing`). In its own thread the database takes CPU, as
 * it must, but never an event loop's turn.
 *
 * Same semantics as PgliteDb in-process: one connection, statements and transactions run one
 * at a time in the order sent; errors keep their codes (pglite-thread-protocol.ts). The thread
 * keeps the process alive only while a call is outstanding, as an in-process PGlite would.
 * If the thread dies, every call fails with REGISTRY_UNAVAILABLE from then on.
 */
import { Worker } from 'node:worker_threads';
import { SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { pgliteThreadEntry } from '../paths.js';
import { checkChannel, unavailable, type Db, type ListenHandlers, type Queryable, type Row } from './db.js';
import { checkpointMetricLines, noCheckpoints, type CheckpointOptions, type CheckpointStats } from './pglite-checkpointer.js';
import { fromWire, type Reply, type Request } from './pglite-thread-protocol.js';

/** A request before it is given its id. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type Op = WithoutId<Request>;

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

export class PgliteThreadDb implements Db {
  readonly kind = 'pglite' as const;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<number, ListenHandlers>();
  private dead: Error | undefined;
  private closing: Promise<void> | undefined;
  /** The thread's checkpointer's figures, as it last posted them. */
  private checkpoints: CheckpointStats = noCheckpoints();

  private constructor(private readonly worker: Worker, private readonly nice: number) {
    worker.on('message', (m: Reply) => this.onMessage(m));
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`the embedded database thread exited (${code})`)));
    worker.unref();
  }

  /**
   * Opens (creating if needed) the database in `dir` in a new thread; in memory when `dir` is
   * undefined. `nice` (0..19, config embeddedDbNice) is the thread's CPU priority once
   * yieldToServing is called; until then it runs as the rest of the process. `checkpoints`: when
   * the thread checkpoints (pglite-checkpointer.ts; tests make it sooner).
   */
  static async open(dir: string | undefined, opts: { nice?: number; checkpoints?: CheckpointOptions } = {}): Promise<PgliteThreadDb> {
    // A small young generation: the thread's JavaScript is PGlite's glue and short-lived result
    // rows; V8's default semi-spaces cost ~10 MB more resident (footprint test) and 1 MB wrote
    // decisions no slower (`npm run bench -- feedback`).
    const worker = new Worker(pgliteThreadEntry, { workerData: { dir, checkpoints: opts.checkpoints }, stdout: false, stderr: false, resourceLimits: { maxYoungGenerationSizeMb: 1 } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: Reply): void => {
        worker.off('message', onMessage);
        worker.off('error', reject);
        if (m.t === 'ready') resolve();
        else if (m.t === 'open-failed') reject(fromWire(m.error));
        else reject(new Error(`embedded database thread: unexpected ${m.t} before ready`));
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    }).catch(async (e: unknown) => {
      worker.on('error', () => undefined); // the thread ends by throwing what it sent
      await worker.terminate();
      throw e;
    });
    return new PgliteThreadDb(worker, opts.nice ?? 0);
  }

  /**
   * Start-up is over: the thread takes its nice value from now on. Not before: the nice value
   * is weighed against every thread on the machine, not only this process's, and start-up is
   * mostly this thread's work (initdb, migrations, the registry reads that load each model).
   * At nice 19 from the first moment, beside two busy processes on two cores, a first `npm start`
   * took 3.5-4 minutes to serve instead of 7-10 s (`npm run bench -- startup`).
   */
  async yieldToServing(): Promise<void> {
    if (this.nice > 0) await this.call({ op: 'nice', nice: this.nice });
  }

  query<T extends Row = Row>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    return this.call({ op: 'query', sql, params }) as Promise<T[]>;
  }

  async write(sql: string, params: readonly unknown[]): Promise<void> {
    await this.call({ op: 'write', sql, params });
  }

  async exec(sql: string): Promise<void> {
    await this.call({ op: 'exec', sql });
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const tx = (await this.call({ op: 'begin' })) as number;
    const q: Queryable = {
      query: <R extends Row = Row>(sql: string, params: readonly unknown[] = []) => this.call({ op: 'query', sql, params, tx }) as Promise<R[]>,
      exec: async (sql: string) => {
        await this.call({ op: 'exec', sql, tx });
      },
    };
    let result: T;
    try {
      result = await fn(q);
    } catch (e) {
      // Errors from `fn` pass unchanged, as with PgliteDb; a failed rollback adds nothing to them.
      await this.call({ op: 'end', tx, commit: false }).catch(() => undefined);
      throw e;
    }
    await this.call({ op: 'end', tx, commit: true });
    return result;
  }

  async listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> {
    checkChannel(channel);
    const id = this.nextId; // the listen's id is its request's (see the worker)
    this.listeners.set(id, handlers);
    try {
      await this.call({ op: 'listen', channel });
    } catch (e) {
      this.listeners.delete(id);
      throw e;
    }
    // Embedded: the "connection" never drops, so LISTEN is active once and for good.
    handlers.onListening?.();
    return async () => {
      this.listeners.delete(id);
      if (this.dead === undefined && this.closing === undefined) await this.call({ op: 'unlisten', listen: id });
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.dead === undefined) await this.call({ op: 'close' }).catch((e: unknown) => log.warn('registry: closing the embedded database failed', errorFields(e)));
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private call(op: Op): Promise<unknown> {
    if (this.dead !== undefined) return Promise.reject(unavailable(this.dead));
    if (this.closing !== undefined && op.op !== 'close') return Promise.reject(new SluiceError('REGISTRY_UNAVAILABLE', 'the registry database is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...op, id } as Request);
    });
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
    return p;
  }

  private onMessage(m: Reply): void {
    if (m.t === 'reply') this.settle(m.id)?.resolve(m.result);
    else if (m.t === 'fail') this.settle(m.id)?.reject(fromWire(m.error));
    else if (m.t === 'notify') this.listeners.get(m.listen)?.onNotify(m.payload);
    else if (m.t === 'checkpoints') this.checkpoints = m.stats;
  }

  metricLines(): string[] {
    return checkpointMetricLines(this.checkpoints);
  }

  /** The thread is gone: every outstanding and later call fails. */
  private fail(e: Error): void {
    if (this.dead !== undefined) return;
    this.dead = e;
    if (this.closing === undefined) log.error('registry: the embedded database thread stopped', errorFields(e));
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(unavailable(e));
  }
}
