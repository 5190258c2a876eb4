/**
 * Idle resident memory of `npm start` on the embedded defaults (issue #10): under 250 MB once
 * idle, with the demo models loaded and having served, both on a fresh data directory (the first
 * start creates the PGlite database) and on a later start over the same directory. Measured as
 * the kernel reports it, VmRSS from /proc/<pid>/status, after requests to both demo models.
 *
 * Before issue #10 these read about 530 MB (first start) and 410 MB (later starts): PGlite
 * started with PostgreSQL's server defaults (128 MB of shared buffers, touched in full),
 * TurboFan recompiles of its WebAssembly left their memory in malloc arenas, and initdb ran in
 * a worker thread whose arenas stayed behind. See src/registry/pglite-settings.ts.
 *
 * One pool worker (the default on a 2-core machine, like CI's): each further worker thread adds
 * its own V8 heap and ONNX Runtime session, ~12 MB, so the bound is for the default here.
 *
 * Until 2026-12-03 the test read once, 2-3 s after the requests, against 270 MB (250 until
 * issue #13 added demo-bandit, ~7 MB): that is the process just after traffic, with young
 * generations still full, not idle. It now reads both (below).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';

// Two figures per start. Idle: what the process holds IDLE_MS after its last request; issue
// #10's target (250 MB) applies to it. V8's memory reducer shrinks the heaps of every thread
// some seconds into a quiet period (2026-12-03, quiet machine: 213-227 MB 20 s after the last
// request, 206-240 MB at 10-15 s). Just after traffic (2-3 s after the last request, 246-264 MB
// the same day): a looser bound that catches a regression in what serving itself keeps.
const LIMIT_MB = 250;
const AFTER_TRAFFIC_LIMIT_MB = 275;
const IDLE_MS = 20_000;

function vmRssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

const features = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [4, 100], data: Array.from({ length: 400 }, (_, i) => (i % 10) / 10) }] });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The highest of five VmRSS samples over a second. */
async function peakRssMb(pid: number): Promise<number> {
  let peak = 0;
  for (let i = 0; i < 5; i++) {
    peak = Math.max(peak, vmRssMb(pid));
    await sleep(200);
  }
  return peak;
}

/**
 * Starts the server on `dataDir`, serves both demo models, and returns its VmRSS just after the
 * traffic and once idle (each the highest of five samples over a second, 2 s and IDLE_MS after
 * the last request).
 */
async function idleRssMb(dataDir: string): Promise<{ afterTraffic: number; idle: number }> {
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
    const quietFrom = Date.now();
    await sleep(2000);
    const afterTraffic = await peakRssMb(child.pid!);
    await sleep(IDLE_MS - (Date.now() - quietFrom));
    return { afterTraffic, idle: await peakRssMb(child.pid!) };
  } finally {
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }
}

function report(which: string, r: { afterTraffic: number; idle: number }): void {
  console.log(`sluice VmRSS, ${which}: ${r.idle.toFixed(1)} MB idle (${IDLE_MS / 1000} s after the last request), ${r.afterTraffic.toFixed(1)} MB 2-3 s after it`);
  expect(r.idle).toBeLessThan(LIMIT_MB);
  expect(r.afterTraffic).toBeLessThan(AFTER_TRAFFIC_LIMIT_MB);
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
  it(`is under ${LIMIT_MB} MB idle on a fresh data directory`, { timeout: 180_000 }, async () => {
    report('fresh data directory', await idleRssMb(dataDir));
  });

  it(`is under ${LIMIT_MB} MB idle on a later start over the same data directory`, { timeout: 240_000 }, async () => {
    if (!existsSync(path.join(dataDir, 'registry', 'PG_VERSION'))) await idleRssMb(dataDir); // run alone: create it first
    report('existing data directory', await idleRssMb(dataDir));
  });
});
