/**
 * Windowed metrics and performance snapshots on a whole server (serve(), two I/O threads,
 * PGlite, 127.0.0.1 port 0): HTTP traffic over 16 connections, so both threads answer, to a
 * version that fails on a marker value. engine.windowStats must count exactly what the clients
 * got (answers, failures by code), merged over both threads, and the model_performance rows
 * written every 200 ms must add up to the same requests, each in exactly one row.
 */
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempRepo, writeFixture } from '../helpers/repo.js';
import { startFull, until, type FullServer } from '../helpers/server.js';

const OK = 300;
const FAIL = 45;
/** The fixture fails a request holding this value (error_on). */
const MARKER = 13;

describe('version windows and performance rows (two I/O threads)', () => {
  let s: FullServer;
  let repo: Awaited<ReturnType<typeof tempRepo>>;
  let pool: Pool;
  const got = { ok: 0, codes: new Map<string, number>() };

  beforeAll(async () => {
    repo = await tempRepo();
    await writeFixture(repo.root, 'win', '1', { op: 'sum', error_on: MARKER }, { dispatch: 'inline' });
    s = await startFull({ modelRepository: repo.root, allowFixtureModels: true, ioThreads: 2, workers: 1, admission: false, performanceIntervalMs: 200 });
    pool = new Pool(s.url, { connections: 16 });
    // Failures spread among the answers; 32 in flight, so the pool opens all 16 connections.
    const kinds = Array.from({ length: OK + FAIL }, (_, i) => (i % 7 === 3 && Math.floor(i / 7) < FAIL ? 'fail' : 'ok'));
    expect(kinds.filter((k) => k === 'fail')).toHaveLength(FAIL);
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < kinds.length) {
        const k = kinds[next++]!;
        const data = k === 'fail' ? [1, MARKER, 0, 0] : [1, 2, 3, 4];
        const r = await pool.request({
          path: '/v2/models/win/versions/1/infer', method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data }] }),
        });
        const body = (await r.body.json()) as { code?: string; outputs?: Array<{ data: number[] }> };
        if (r.statusCode === 200) {
          expect(body.outputs?.[0]?.data).toEqual([10]);
          got.ok++;
        } else got.codes.set(body.code ?? '?', (got.codes.get(body.code ?? '?') ?? 0) + 1);
      }
    }));
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
    await s?.close();
    await repo?.cleanup();
  });

  it('both threads answered, and the clients got what was sent', async () => {
    expect(got.ok).toBe(OK);
    expect(Object.fromEntries(got.codes)).toEqual({ MODEL_ERROR: FAIL });
    const perThread = (await s.engine.snapshots()).map((t) => t.versions.find((v) => v.model === 'win' && v.version === '1'));
    expect(perThread).toHaveLength(2);
    for (const t of perThread) expect(t!.success + t!.failure).toBeGreaterThan(0);
  });

  it('windowStats counts every request of both threads, errors by code, latency of the answers', async () => {
    const w = await s.engine.windowStats('win', '1', 120);
    expect(w).toMatchObject({ requests: OK + FAIL, errors: FAIL, errorsByCode: { MODEL_ERROR: FAIL } });
    expect(w.latency.count).toBe(OK);
    expect(w.latency.p50).toBeGreaterThan(0);
    expect(w.latency.p50).toBeLessThanOrEqual(w.latency.p95);
    expect(w.latency.p95).toBeLessThanOrEqual(w.latency.p99);
    expect(w.toMs - w.fromMs).toBeGreaterThanOrEqual(120_000);
    expect(w.fromMs % 10_000).toBe(0);
    // The merged histogram is the lifetime one over the same requests (all inside the window).
    const snap = await s.engine.windowSnapshot('win', '1', 120);
    const lifetime = (await s.engine.wholeMetrics()).metrics.find('win', '1')!.latency;
    expect(Array.from(snap.latency.counts)).toEqual(Array.from(lifetime.totalCount > 0 ? (lifetime as unknown as { _counts: Uint32Array })._counts.slice(0, snap.latency.counts.length) : []));
    expect(snap.latency.max).toBe(lifetime.maxValue);
    // A window that ended before the traffic holds none of it.
    expect(await s.engine.windowStats('win', '1', 10, { toMs: w.fromMs - 60_000 })).toMatchObject({ requests: 0, errors: 0, latency: { count: 0 } });
  });

  it('refuses bad windows with stable codes', async () => {
    await expect(s.engine.windowStats('win', '1', 0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(s.engine.windowStats('win', '1', 301)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(s.engine.windowStats('win', '1', Number.NaN)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(s.engine.windowStats('win', '7', 60)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
    await expect(s.engine.windowStats('nope', '1', 60)).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await expect(s.engine.windowStats('../x', '1', 60)).rejects.toMatchObject({ code: 'NAME_INVALID' });
  });

  it('writes model_performance rows that add up to the requests sent, each counted once', async () => {
    const rows = async () => s.registry.registry.performance('win', { version: '1', limit: 10_000 });
    const sum = (xs: Awaited<ReturnType<typeof rows>>, f: (x: (typeof xs)[number]) => number) => xs.reduce((a, x) => a + f(x), 0);
    await until(async () => sum(await rows(), (r) => r.predictionCount) === OK, 15_000, 50);
    const all = await rows();
    expect(sum(all, (r) => Number(r.extra.errors))).toBe(FAIL);
    expect(sum(all, (r) => Number(r.extra.requests))).toBe(OK + FAIL);
    for (const r of all) {
      expect(r.extra).toMatchObject({ interval_ms: 200 });
      expect(r.memoryBytes).toBeGreaterThan(0);
      expect(r.cpuPercent).toBeGreaterThanOrEqual(0);
      if (r.predictionCount > 0) expect(r.p50Ms! <= r.p95Ms! && r.p95Ms! <= r.p99Ms!).toBe(true);
      if (Number(r.extra.requests) > 0) expect(r.errorRate).toBeCloseTo(Number(r.extra.errors) / Number(r.extra.requests), 12);
    }
    // Rows keep coming, one per interval, with nothing new to count.
    const n = all.length;
    await until(async () => (await rows()).length >= n + 2, 10_000, 50);
    expect(sum(await rows(), (r) => r.predictionCount)).toBe(OK);
  });
});
