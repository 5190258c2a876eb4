/**
 * Pooled batches from two producer threads (src/dispatch/board-client.ts, issue #11): the main
 * thread's WorkerPool and a node:worker_threads thread with its own BoardClient and Batcher
 * over the same board and arena, each with its own arena slots. Real pool workers compute a
 * fixture model (the sum of each row) and both threads check every answer; a batch that kills
 * its pool worker fails in the thread that sent it; the second thread exits on its own.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Arena } from '../../src/dispatch/arena.js';
import { Batcher } from '../../src/dispatch/batcher.js';
import { S_RUNNING, stateIndex } from '../../src/dispatch/board.js';
import { WorkerPool } from '../../src/dispatch/pool.js';
import { ModelTable } from '../../src/dispatch/model-table.js';
import { slotLayout, type SlotLayout } from '../../src/dispatch/slot-layout.js';
import { parseManifest, type Manifest } from '../../src/model/manifest.js';
import { projectRoot } from '../../src/paths.js';

const CRASH = 666;
const COLS = 4;
const SLOTS_PER_THREAD = 4;
const dist = (p: string) => pathToFileURL(path.join(projectRoot, 'dist/src', p)).href;
const modules = {
  boardClient: dist('dispatch/board-client.js'),
  batcher: dist('dispatch/batcher.js'),
  slotLayout: dist('dispatch/slot-layout.js'),
  errors: dist('errors.js'),
};

function fixtureManifest(name: string, parameters: Record<string, unknown>, maxBatch = 8): Manifest {
  return parseManifest({
    name, version: '1', kind: 'fixture',
    signature: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, COLS] }],
      outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
    },
    max_batch_size: maxBatch,
    dispatch: 'pool',
    parameters,
    payload: { file: 'fixture.json', sha256: '0'.repeat(64) },
  });
}

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Msg { t: string; [k: string]: unknown }

/** The second producer thread (test/fixtures/board-client-worker.mjs). */
class Producer {
  readonly exited: Promise<number>;
  private readonly inbox: Msg[] = [];
  private readonly waiters: Array<() => void> = [];
  threadId = -1;

  constructor(readonly worker: Worker) {
    this.exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.on('message', (m: Msg) => {
      this.inbox.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The next message of type `t` (others stay queued for their own reader). */
  async next(t: string, ms = 20_000): Promise<Msg> {
    const until = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.t === t);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (Date.now() > until) throw new Error(`no '${t}' message from the producer thread`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Asks the thread to stop; resolves with its exit code once it ends by itself (-1: it did not). */
  async stop(): Promise<{ pending: number; exitCode: number }> {
    this.worker.postMessage({ t: 'stop' });
    const { pending } = await this.next('stopped');
    const exitCode = await Promise.race([this.exited, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
    return { pending: pending as number, exitCode };
  }
}

/** A pool with one pooled fixture version, slots for the main thread and for a second thread. */
async function setUp(manifest: Manifest, threads: number) {
  const arena = new Arena(8 * 1024 * 1024);
  const table = new ModelTable();
  const pool = new WorkerPool({ threads, arena: arena.buffer, table: table.buffer, allowFixtures: true, spinUs: 200 });
  const layout = slotLayout(manifest) as SlotLayout;
  const gen = table.newGeneration();
  const mainSlots: number[] = [];
  const theirs: Array<{ slot: number; entry: number }> = [];
  for (let i = 0; i < SLOTS_PER_THREAD; i++) {
    const mine = arena.alloc(layout.bytes)!;
    pool.attach(mine);
    mainSlots.push(mine);
    const slot = arena.alloc(layout.bytes)!;
    theirs.push({ slot, entry: pool.allocEntry(slot) });
  }
  await pool.load(gen, manifest, new TextEncoder().encode('{}'));
  const batcher = new Batcher({
    gen, layout, maxQueueDelayUs: 0, maxQueueSize: 100_000, arena: arena.buffer, slots: mainSlots,
    run: (slot) => pool.run(slot),
    waitSync: (slot, us) => pool.waitSync(slot, us),
  });
  const worker = new Worker(new URL('../fixtures/board-client-worker.mjs', import.meta.url), {
    workerData: { modules, board: pool.boardBuffer, arena: arena.buffer, boardEntries: pool.boardEntries, spinUs: pool.spinUs, attach: theirs, manifest, gen },
  });
  const producer = new Producer(worker);
  producer.threadId = (await producer.next('ready')).threadId as number;
  return { pool, batcher, producer, theirs };
}

/** `requests` concurrent main-thread requests of 1-3 rows; checks every sum. */
async function runMain(batcher: Batcher, requests: number, seed: number): Promise<{ answered: number; wrong: number; failures: string[] }> {
  let answered = 0;
  let wrong = 0;
  const failures: string[] = [];
  await Promise.all(Array.from({ length: requests }, async (_, k) => {
    const rows = 1 + (k % 3);
    const data = new Float32Array(rows * COLS).map((_, i) => ((seed * 5 + k * 11 + i) % 37) - 18);
    try {
      const [out] = await batcher.submit([{ name: 'x', datatype: 'FP32', shape: [rows, COLS], data }], rows, Infinity, k % 4 === 0 ? 20_000 : 0);
      answered++;
      for (let r = 0; r < rows; r++) {
        const sum = data.slice(r * COLS, r * COLS + COLS).reduce((a, b) => a + b, 0);
        if (out!.data[r] !== sum) wrong++;
      }
    } catch (e) {
      failures.push((e as { code?: string }).code ?? String(e));
    }
  }));
  return { answered, wrong, failures };
}

describe('board client: pooled batches from a second thread', () => {
  let s: Awaited<ReturnType<typeof setUp>>;

  beforeAll(async () => {
    s = await setUp(fixtureManifest('sum', { op: 'sum', crash_on: CRASH }), 2);
  });
  afterAll(async () => {
    if (s) {
      await s.pool.close();
      await s.producer.worker.terminate(); // only if a test failed before the thread stopped
    }
  });

  it('answers every batch of both threads correctly while they run at once', async () => {
    for (let round = 0; round < 3; round++) {
      s.producer.worker.postMessage({ t: 'run', requests: 400, seed: round });
      const mine = await runMain(s.batcher, 400, round);
      const theirs = await s.producer.next('ran');
      expect(mine).toEqual({ answered: 400, wrong: 0, failures: [] });
      expect(theirs).toMatchObject({ answered: 400, wrong: 0, failures: [] });
    }
  });

  it("wakes only a batch's own thread: the second thread's completions leave the main thread's counter alone", async () => {
    const board = new Int32Array(s.pool.boardBuffer);
    const before = Atomics.load(board, 0);
    s.producer.worker.postMessage({ t: 'run', requests: 100, seed: 9 });
    expect(await s.producer.next('ran')).toMatchObject({ answered: 100, wrong: 0 });
    expect(Atomics.load(board, 0)).toBe(before);
    await runMain(s.batcher, 10, 9);
    expect(Atomics.load(board, 0)).toBeGreaterThan(before);
  });

  it("fails the second thread's batch with WORKER_LOST when its worker dies, reaped through onWorkersLost; the pool recovers", async () => {
    const aliveSeen: number[][] = [];
    const unsubscribe = s.pool.onWorkersLost((alive) => {
      aliveSeen.push(alive);
      s.producer.worker.postMessage({ t: 'reap', alive });
    });
    s.producer.worker.postMessage({ t: 'crash', marker: CRASH });
    const mine = await runMain(s.batcher, 60, 20);
    expect(await s.producer.next('crashed')).toEqual({ t: 'crashed', code: 'WORKER_LOST' });
    // The main thread's batches never ran on the dying worker (it was busy with the crash).
    expect(mine).toEqual({ answered: 60, wrong: 0, failures: [] });
    await waitFor(() => aliveSeen.length > 0);
    // Either reap failed the batch or the pool's LOST mark had already woken the thread.
    expect([0, 1]).toContain((await s.producer.next('reaped')).count);
    expect(aliveSeen[0]!.length).toBeLessThan(2);
    expect(s.pool.lostWorkers).toBe(1);
    unsubscribe();

    // Without any listener the pool's mark alone fails the batch, in the thread that sent it.
    s.producer.worker.postMessage({ t: 'crash', marker: CRASH });
    expect(await s.producer.next('crashed')).toEqual({ t: 'crashed', code: 'WORKER_LOST' });
    expect(aliveSeen.length).toBe(1);
    expect(s.pool.lostWorkers).toBe(2);

    await waitFor(() => s.pool.threads === 2);
    s.producer.worker.postMessage({ t: 'run', requests: 200, seed: 21 });
    expect(await runMain(s.batcher, 200, 21)).toEqual({ answered: 200, wrong: 0, failures: [] });
    expect(await s.producer.next('ran')).toMatchObject({ answered: 200, wrong: 0, failures: [] });
  });

  it('lets the second thread end on its own once its client is closed', async () => {
    const { pending, exitCode } = await s.producer.stop();
    expect(pending).toBe(0);
    expect(exitCode).toBe(0);
  });
});

describe('board client: pool shutdown', () => {
  it("fails the second thread's running and queued batches with SHUTTING_DOWN when the pool closes", async () => {
    // Each batch sleeps 300 ms on its worker; one worker, so one batch runs and the other
    // waits (requests of 1, 2 and 3 rows make two batches of at most 4 rows).
    const s = await setUp(fixtureManifest('slow', { op: 'sum', sleep_us: 300_000 }, 4), 1);
    let closed = false;
    try {
      s.producer.worker.postMessage({ t: 'run', requests: 3, seed: 1 });
      const board = new Int32Array(s.pool.boardBuffer);
      // Until the thread's batches are on the board (one running, the others queued).
      await waitFor(() => s.theirs.some(({ entry }) => (Atomics.load(board, stateIndex(entry)) & 0xf) === S_RUNNING));
      await s.pool.close();
      closed = true;
      const ran = await s.producer.next('ran');
      expect(ran).toMatchObject({ answered: 0, failures: ['SHUTTING_DOWN', 'SHUTTING_DOWN', 'SHUTTING_DOWN'] });
      expect(await s.producer.stop()).toEqual({ pending: 0, exitCode: 0 });
    } finally {
      if (!closed) await s.pool.close();
      await s.producer.worker.terminate();
    }
  });
});
