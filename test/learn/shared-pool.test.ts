/**
 * The decision log's shared buffers (src/learn/shared-pool.ts): pooled by power-of-two size and
 * reused; a chunk's buffers go back to the pool of the thread that made them once the log has
 * written the chunk and keeps it no longer (at once for this thread's, by message for another's);
 * nothing written is corrupted by the reuse, on PGlite and PostgreSQL, with a real worker thread
 * as the I/O thread.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { chunkVariant, DecisionChunkBuilder, releaseChunk, type DecisionChunk } from '../../src/learn/decision-chunk.js';
import { DecisionLog } from '../../src/learn/decision-log.js';
import { lastEventIdMs } from '../../src/learn/event-id.js';
import { flushReleases, registerPoolSender, releaseBuffers, SharedPool, threadPool, THIS_THREAD } from '../../src/learn/shared-pool.js';
import { contextOf } from '../../src/learn/decision.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';

describe('shared pool', () => {
  it('hands out views of power-of-two shared buffers (4 KB at least) and reuses what it is given', () => {
    const pool = new SharedPool(1 << 20);
    const a = pool.take(10);
    expect(a.byteLength).toBe(10);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(a.buffer.byteLength).toBe(4096);
    expect(pool.take(4097).buffer.byteLength).toBe(8192);
    expect(pool.take(100_000).buffer.byteLength).toBe(131_072);
    expect(pool.made).toBe(3);
    pool.give(a.buffer);
    expect(pool.idleBytes).toBe(4096);
    const b = pool.take(4000);
    expect(b.buffer).toBe(a.buffer);
    expect(pool.made).toBe(3);
    expect(pool.idleBytes).toBe(0);
  });

  it('keeps at most its idle limit, and takes back only buffers of its own sizes', () => {
    const pool = new SharedPool(8192);
    const bufs = [pool.take(1), pool.take(1), pool.take(1)].map((v) => v.buffer);
    for (const b of bufs) pool.give(b);
    expect(pool.idleBytes).toBe(8192); // the third went to the collector
    pool.give(new SharedArrayBuffer(5000));
    pool.give(new ArrayBuffer(4096));
    expect(pool.idleBytes).toBe(8192);
  });

  it('gives this thread\'s buffers back at once and another thread\'s by one message per thread', () => {
    const sent: Array<[number, SharedArrayBuffer[]]> = [];
    const other = THIS_THREAD + 1000;
    const unregister = registerPoolSender(other, (bufs) => sent.push([other, bufs]));
    try {
      const idle = threadPool.idleBytes;
      const mine = threadPool.take(100);
      releaseBuffers(THIS_THREAD, [mine]);
      expect(threadPool.idleBytes).toBe(idle + 4096);
      const theirs = [new Uint8Array(new SharedArrayBuffer(4096)), new Uint8Array(new SharedArrayBuffer(8192))];
      releaseBuffers(other, [theirs[0]!]);
      releaseBuffers(other, [theirs[1]!]);
      releaseBuffers(other + 1, theirs); // a thread that has gone: left to the collector
      releaseBuffers(undefined, theirs); // buffers of their own
      expect(sent).toEqual([]);
      flushReleases();
      expect(sent).toEqual([[other, [theirs[0]!.buffer, theirs[1]!.buffer]]]);
      flushReleases();
      expect(sent.length).toBe(1);
    } finally {
      unregister();
    }
  });

  it('a chunk is given back once: a second release does nothing', () => {
    const b = new DecisionChunkBuilder();
    const id = b.nextId();
    b.add(id, lastEventIdMs(), chunkVariant('m', 'a', '1', 1), 'u', 0.5, new Float32Array([1, 2]));
    const chunk = b.take()!;
    expect(chunk.origin).toBe(THIS_THREAD);
    const idle = threadPool.idleBytes;
    releaseChunk(chunk);
    const after = threadPool.idleBytes;
    expect(after).toBe(idle + chunk.rows.buffer.byteLength + chunk.contexts.buffer.byteLength + chunk.dir.buffer.byteLength);
    releaseChunk(chunk);
    expect(threadPool.idleBytes).toBe(after);
  });
});

describeEachDb('decision log with shared buffers', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await backend.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('gives a dropped chunk\'s buffers back to the pool', async () => {
    const dl = new DecisionLog(t.db, { capacity: 1, batchSize: 10, flushMs: 10_000 });
    const b = new DecisionChunkBuilder();
    for (let i = 0; i < 2; i++) {
      const id = b.nextId();
      b.add(id, lastEventIdMs(), chunkVariant('m', 'a', '1', 1), undefined, 0.5, new Float32Array(8));
    }
    const chunk: DecisionChunk = b.take()!;
    const idle = threadPool.idleBytes;
    expect(dl.offerChunk(chunk)).toBe(false); // 2 decisions over a capacity of 1
    expect(threadPool.idleBytes).toBeGreaterThan(idle);
    expect(chunk.origin).toBeUndefined();
    await dl.close();
  });

  it('reuses an I/O thread\'s buffers chunk after chunk, and every decision reads back exactly', async () => {
    const chunks = 60;
    const rows = 40;
    const features = 24;
    const dist = (f: string) => pathToFileURL(path.join(projectRoot, 'dist/src/learn', f)).href;
    const worker = new Worker(new URL('../fixtures/decision-chunk-worker.mjs', import.meta.url), {
      workerData: { rows, features, chunkModule: dist('decision-chunk.js'), poolModule: dist('shared-pool.js'), eventIdModule: dist('event-id.js') },
    });
    const unregister = registerPoolSender(worker.threadId, (bufs) => worker.postMessage({ recycle: bufs }));
    const inbox: Array<{ ready?: true; chunk?: DecisionChunk; made?: number }> = [];
    let wake: (() => void) | undefined;
    worker.on('message', (m) => {
      inbox.push(m);
      wake?.();
    });
    const next = async () => {
      while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
      return inbox.shift()!;
    };
    // Keeps nothing written (a recent window of one byte): each chunk goes back once written.
    const dl = new DecisionLog(t.db, { capacity: 100_000, batchSize: 1000, flushMs: 5, recentBytes: 1 });
    const mainMadeBefore = threadPool.made;
    const ids: string[] = [];
    try {
      expect((await next()).ready).toBe(true);
      for (let k = 0; k < chunks; k++) {
        worker.postMessage({ next: true });
        const chunk = (await next()).chunk!;
        expect(chunk.rows.buffer).toBeInstanceOf(SharedArrayBuffer);
        expect(chunk.origin).toBe(worker.threadId);
        ids.push(chunk.key);
        expect(dl.offerChunk(chunk)).toBe(true);
        await dl.flush();
      }
      worker.postMessage({ done: true });
      const made = (await next()).made!;
      // Three buffers a chunk (rows, contexts, directory), made once and reused: without the
      // log giving them back it would be 3 x 60.
      expect(made).toBeLessThanOrEqual(6);
      // This thread's pool held the batches' parameters, reused the same way.
      expect(threadPool.made - mainMadeBefore).toBeLessThanOrEqual(6);
    } finally {
      unregister();
      await worker.terminate();
      await dl.close();
    }
    expect(dl.stats.logged).toBe(chunks * rows);
    const back = await t.db.query<{ unit_id: string; context: Uint8Array }>(`SELECT unit_id, context FROM all_decisions WHERE model = 'pool-test'`);
    expect(back.length).toBe(chunks * rows);
    let wrong = 0;
    for (const r of back) {
      const [, k, row] = /^u(\d+)-(\d+)$/.exec(r.unit_id)!.map(Number);
      const f = contextOf(r.context)!;
      if (f.length !== features) wrong++;
      else for (let i = 0; i < features; i++) if (f[i] !== Math.fround(k! * 1000 + row! + i / 8)) wrong++;
    }
    expect(wrong).toBe(0);
  });
});
