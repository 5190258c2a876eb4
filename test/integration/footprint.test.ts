/**
 * Idle resident memory of `npm start` on the embedded defaults (issue #10): under 270 MB with
 * the demo models loaded and serving, both on a fresh data directory (the first start creates
 * the PGlite database) and on a later start over the same directory. Measured as the kernel
 * reports it, VmRSS from /proc/<pid>/status, after requests to both demo models and a pause.
 *
 * Before issue #10 these read about 530 MB (first start) and 410 MB (later starts): PGlite
 * started with PostgreSQL's server defaults (128 MB of shared buffers, touched in full),
 * TurboFan recompiles of its WebAssembly left their memory in malloc arenas, and initdb ran in
 * a worker thread whose arenas stayed behind. See src/registry/pglite-settings.ts.
 *
 * One pool worker (the default on a 2-core machine, like CI's): each further worker thread adds
 * its own V8 heap and ONNX Runtime session, ~12 MB, so the bound is for the default here.
 *
 * The bound was 250 MB until issue #13 added a third demo model, demo-bandit: a LinUCB state of
 * 5 x 100 x 100 x 2 doubles (0.8 MB), held by its learner and twice in its state cell, and the
 * learning code on every thread. Measured the same way on the same build (2026-12-02), the two
 * other demo models alone read 245/237-242 MB, all three 252/244-249 MB.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';

// Issue #10's target is 250 MB and is NOT met (README). The bound guards against regressions:
// the same build read 250-261 MB run to run on 2026-12-02 (2 s after the requests; 249 MB after
// 15 s idle, when V8's memory reducer has shrunk the young generations).
const LIMIT_MB = 270;

function vmRssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

const features = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [4, 100], data: Array.from({ length: 400 }, (_, i) => (i % 10) / 10) }] });

/** Starts the server on `dataDir`, serves both demo models, and returns its idle VmRSS. */
async function idleRssMb(dataDir: string): Promise<number> {
  const { child, http: url, exited } = await startSluiceProcess({ env: { SLUICE_DATA_DIR: dataDir, SLUICE_WORKERS: '1' } });
  try {
    expect((await fetch(`${url}/v2/health/ready`)).status).toBe(200);
    const index = (await (await fetch(`${url}/v2/repository/index`)).json()) as Array<{ name: string; state: string }>;
    expect(index.map((m) => `${m.name}:${m.state}`)).toEqual(['demo-bandit:READY', 'demo-logistic:READY', 'demo-onnx:READY']);
    for (const model of ['demo-logistic', 'demo-onnx']) {
      for (let i = 0; i < 30; i++) {
        const res = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: features });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { outputs: Array<{ shape: number[] }> };
        expect(body.outputs[0]!.shape).toEqual([4, 1]);
      }
    }
    // Idle: no requests for 2 s; the highest of a few samples over the next second.
    await new Promise((r) => setTimeout(r, 2000));
    let peak = 0;
    for (let i = 0; i < 5; i++) {
      peak = Math.max(peak, vmRssMb(child.pid!));
      await new Promise((r) => setTimeout(r, 200));
    }
    return peak;
  } finally {
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
}

describe.skipIf(process.platform !== 'linux')('npm start idle footprint (VmRSS; Linux only: read from /proc)', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'sluice-footprint-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  // Minutes, not seconds: the first start runs initdb, and CI's 2 cores may be busy.
  it(`stays under ${LIMIT_MB} MB on a fresh data directory`, { timeout: 180_000 }, async () => {
    const mb = await idleRssMb(dataDir);
    console.log(`sluice idle VmRSS, fresh data directory: ${mb.toFixed(1)} MB`);
    expect(mb).toBeLessThan(LIMIT_MB);
  });

  it(`stays under ${LIMIT_MB} MB on a later start over the same data directory`, { timeout: 240_000 }, async () => {
    if (!existsSync(path.join(dataDir, 'registry', 'PG_VERSION'))) await idleRssMb(dataDir); // run alone: create it first
    const mb = await idleRssMb(dataDir);
    console.log(`sluice idle VmRSS, existing data directory: ${mb.toFixed(1)} MB`);
    expect(mb).toBeLessThan(LIMIT_MB);
  });
});
