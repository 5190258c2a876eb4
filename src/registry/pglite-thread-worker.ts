/**
 * The embedded database's own thread: opens PGlite (PgliteDb) in the directory it is given and
 * runs the statements the process sends it (pglite-thread.ts). PGlite runs each statement
 * synchronously in WebAssembly; here that blocks only this thread, never an I/O thread's
 * event loop (a batch of decisions takes milliseconds).
 *
 * Transactions: `begin` opens one (PGlite's own transaction, which holds its one connection,
 * so other statements wait as they would in-process); the statements that name it run in it;
 * `end` commits or rolls it back and is answered once that has happened.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { log } from '../log.js';
import { lowerCurrentThreadPriority } from '../native.js';
import type { Queryable } from './db.js';
import type { CheckpointOptions } from './pglite-checkpointer.js';
import { PgliteDb } from './pglite-db.js';
import { toWire, type Reply, type Request } from './pglite-thread-protocol.js';

const port = parentPort!;
const { dir, checkpoints } = workerData as { dir: string | undefined; checkpoints?: CheckpointOptions };

interface OpenTx {
  tx: Queryable;
  finish(commit: boolean): void;
  /** The `end` request to answer when the transaction has finished. */
  endId?: number;
}

const ROLLBACK = Symbol('rollback');
/** `end` is answered when its transaction has finished (see `finished`), not when handled. */
const NO_REPLY = Symbol('no reply');
const txs = new Map<number, OpenTx>();
const listens = new Map<number, () => Promise<void>>();

function send(m: Reply): void {
  port.postMessage(m);
}

let db: PgliteDb;
try {
  db = await PgliteDb.open(dir, checkpoints, (stats) => send({ t: 'checkpoints', stats }));
  send({ t: 'ready' });
} catch (e) {
  send({ t: 'open-failed', error: toWire(e) });
  port.close();
  throw e; // ends this thread; the process learnt why from the message above
}

function target(tx: number | undefined): Queryable {
  if (tx === undefined) return db;
  const open = txs.get(tx);
  if (!open) throw new Error(`transaction ${tx} is not open`);
  return open.tx;
}

/** Opens a transaction; resolves once its statements may run. */
function begin(id: number): Promise<void> {
  return new Promise((started, failedToStart) => {
    let opened = false;
    db.transaction(async (tx) => {
      opened = true;
      const commit = await new Promise<boolean>((finish) => {
        txs.set(id, { tx, finish });
        started();
      });
      if (!commit) throw ROLLBACK;
    }).then(
      () => finished(id, undefined),
      (e: unknown) => (opened ? finished(id, e === ROLLBACK ? undefined : e) : failedToStart(e)),
    );
  });
}

function finished(tx: number, error: unknown): void {
  const open = txs.get(tx);
  txs.delete(tx);
  if (open?.endId === undefined) return;
  send(error === undefined ? { t: 'reply', id: open.endId, result: undefined } : { t: 'fail', id: open.endId, error: toWire(error) });
}

async function handle(m: Request): Promise<unknown> {
  switch (m.op) {
    case 'query':
      return target(m.tx).query(m.sql, m.params);
    case 'write':
      return db.write(m.sql, m.params);
    case 'exec':
      return target(m.tx).exec(m.sql);
    case 'begin':
      await begin(m.id);
      return m.id;
    case 'end': {
      const open = txs.get(m.tx);
      if (!open) throw new Error(`transaction ${m.tx} is not open`);
      open.endId = m.id;
      open.finish(m.commit);
      return NO_REPLY;
    }
    case 'listen': {
      const stop = await db.listen(m.channel, { onNotify: (payload) => send({ t: 'notify', listen: m.id, payload }) });
      listens.set(m.id, stop);
      return m.id;
    }
    case 'unlisten': {
      const stop = listens.get(m.listen);
      listens.delete(m.listen);
      await stop?.();
      return undefined;
    }
    case 'nice':
      // Serving first (PgliteThreadDb.yieldToServing): under saturation this thread then gets
      // little CPU (decisions are dropped, counted, and feedback acknowledgements wait);
      // otherwise all the CPU serving leaves idle.
      if (!lowerCurrentThreadPriority(m.nice)) log.warn('registry: cannot lower the embedded database thread\'s priority', { nice: m.nice });
      return undefined;
    case 'close':
      await db.close();
      return undefined;
  }
}

port.on('message', (m: Request) => {
  handle(m).then(
    (result) => {
      if (result !== NO_REPLY) send({ t: 'reply', id: m.id, result });
      if (m.op === 'close') port.close();
    },
    (e: unknown) => send({ t: 'fail', id: m.id, error: toWire(e) }),
  );
});
