import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMax, main } from '../../loadtest/cli.js';
import { runOpenLoop } from '../../loadtest/open-loop.js';
import { summarise } from '../../loadtest/report.js';
import { buildTarget } from '../../loadtest/target.js';
import { startServer, type TestServer } from '../helpers/http.js';

describe('load-test harness', () => {
  let s: TestServer;
  let dir: string;

  beforeAll(async () => {
    s = await startServer({ workers: 1 });
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-lt-'));
  });
  afterAll(async () => {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('offers the fixed rate and counts every answer (JSON and binary)', async () => {
    for (const binary of [false, true]) {
      const target = await buildTarget({ url: s.url, model: 'demo-logistic', batch: binary ? 64 : 1, binary });
      const before = s.engine.modelStats('demo-logistic')[0]!.success;
      const r = summarise([await runOpenLoop(target, { rate: 500, durationS: 1, connections: 4 })]);
      expect(r.sent).toBe(500);
      expect(r.answered).toBe(500);
      expect(r.errorCount).toBe(0);
      expect(s.engine.modelStats('demo-logistic')[0]!.success - before).toBe(500);
      expect(r.latencyMs.p50).toBeGreaterThan(0);
      expect(r.latencyMs.max).toBeGreaterThanOrEqual(r.latencyMs.p99);
    }
  });

  it('counts errors by status when the server refuses', async () => {
    const target = await buildTarget({ url: s.url, model: 'demo-logistic', batch: 1025, binary: true });
    const r = summarise([await runOpenLoop(target, { rate: 100, durationS: 0.5, connections: 2 })]);
    expect(r.errors).toEqual({ 400: 50 });
  });

  it('find-max reports the highest passing step, and the CLI writes a JSON report and an SVG plot', async () => {
    const r = await findMax({ protocol: 'http', url: s.url, model: 'demo-logistic', batch: 1, binary: false, rate: 200, duration: 1, connections: 2, workers: 1, findMax: true, sloMs: 1e-6, stepDuration: 0.5, stepFactor: 2, stepRetries: 1, quiet: true });
    // An impossible SLO: the first step fails, and fails again when retried; nothing passes.
    expect(r.maxRate).toBe(0);
    expect(r.steps.map((x) => [x.rate, x.attempt, x.pass])).toEqual([[200, 1, false], [200, 2, false]]);
    // A reachable SLO passes steps and doubles the rate each time, each rate run once.
    const ok = await findMax({ protocol: 'http', url: s.url, model: 'demo-logistic', batch: 1, binary: false, rate: 50, duration: 1, connections: 2, workers: 1, findMax: true, sloMs: 60_000, stepDuration: 0.3, stepFactor: 2, stepRetries: 0, quiet: true });
    expect(ok.maxRate).toBeGreaterThanOrEqual(50);
    expect(ok.steps.every((x) => x.attempt === 1)).toBe(true);
    const report = path.join(dir, 'run.json');
    await main(['--url', s.url, '--model', 'demo-logistic', '--rate', '200', '--duration', '1', '--workers', '2', '--report', report, '--quiet']);
    const doc = JSON.parse(readFileSync(report, 'utf8'));
    expect(doc).toMatchObject({ sent: 200, answered: 200, errorCount: 0, options: { workers: 2 } });
    expect(existsSync(path.join(dir, 'run.svg'))).toBe(true);
    expect(readFileSync(path.join(dir, 'run.svg'), 'utf8')).toContain('<polyline');
  });
});
