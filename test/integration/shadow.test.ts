/**
 * Shadows (#12): a route's shadow version runs a share of the requests after the caller's answer;
 * a shadow that sleeps 50 ms or fails never changes the caller's answers or delays them, and the
 * shadow report counts what it did. Phases with and without the shadow interleave in one run.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../src/service/engine.js';
import type { RouteSpec } from '../../src/routing/route.js';
import type { Tensor } from '../../src/model/tensor.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';

const x: Tensor = { name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, 2, 3, 4]) };

function route(shadows: RouteSpec['shadows']): RouteSpec {
  return { variants: [{ name: 'main', version: '1', weight: 1 }], assignment: 'random', salt: 's', shadows, logFeatures: false };
}

describe('shadows', () => {
  let engine: Engine;
  let repo: Awaited<ReturnType<typeof tempRepo>>;
  let dir: string;

  beforeAll(async () => {
    repo = await tempRepo();
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-shadow-'));
    const failFile = path.join(dir, 'fail');
    await writeFixture(repo.root, 'shm', '1', { op: 'sum' }, { dispatch: 'inline' });
    // The same sum, 50 ms late (sleeping in a pool worker, as a slow model would).
    await writeFixture(repo.root, 'shm', '2', { op: 'sum', sleep_us: 50_000 }, { dispatch: 'pool' });
    // Failing once the test creates the file (it would not pass its smoke test otherwise).
    await writeFixture(repo.root, 'shm', '3', { op: 'sum', fail_while_exists: failFile }, { dispatch: 'inline' });
    // A different answer (sum + 0 would agree; echo's first element differs): disagreement.
    await writeFixture(repo.root, 'shm', '4', { op: 'sum', nan_on: 4 }, { dispatch: 'inline' });
    engine = await Engine.start({ modelRepository: repo.root, workers: 1, startupModels: 'none', allowFixtureModels: true });
    await engine.load('shm', { version: '1' });
  });
  afterAll(async () => {
    await engine.close();
    await repo.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  const phase = async (n: number, h: hdr.Histogram) => {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const r = await engine.infer({ model: 'shm', inputs: [x] });
      h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
      // The caller's answer is always its own version's.
      expect(r.version).toBe('1');
      expect(r.outputs[0]!.data[0]).toBe(10);
      await new Promise((res) => setImmediate(res));
    }
  };

  it('a slow (50 ms) and a failing shadow leave the caller unchanged and its p99 within noise; the report counts them', async () => {
    // Load both shadows (a route loads what it names), then make version 3 fail.
    await engine.setRoute('shm', route([{ version: '2', fraction: 1 }, { version: '3', fraction: 0.5 }]));
    await writeFile(path.join(dir, 'fail'), '');
    const without = hdr.build();
    const withShadow = hdr.build();
    for (let round = 0; round < 3; round++) {
      await engine.setRoute('shm', route([]));
      await phase(200, without);
      await engine.setRoute('shm', route([{ version: '2', fraction: 1 }, { version: '3', fraction: 0.5 }]));
      await phase(200, withShadow);
    }
    const p99 = { without: without.getValueAtPercentile(99) / 1000, with: withShadow.getValueAtPercentile(99) / 1000 };
    // Within noise: a 50 ms shadow on the caller's path would put p99 at >= 50 ms.
    expect(p99.with, JSON.stringify(p99)).toBeLessThan(Math.max(3 * p99.without, p99.without + 5));
    await new Promise((r) => setTimeout(r, 300));
    const report = await engine.shadowReport('shm');
    const slow = report.shadows.find((s) => s.version === '2') as any;
    const failing = report.shadows.find((s) => s.version === '3') as any;
    // Every request was offered to the slow shadow: mirrored or dropped (its pool worker is busy 50 ms each).
    expect(slow.mirrored + slow.dropped).toBe(600);
    expect(slow.mirrored).toBeGreaterThan(0);
    expect(slow.errors).toBe(0);
    expect(slow.agreeing).toBe(slow.compared);
    expect(slow.latency_ms.shadow.p50).toBeGreaterThanOrEqual(45);
    // About half were offered to the failing shadow (mirrored, or dropped while the slow one
    // held this thread's shadow budget); every one that ran failed, none agreed.
    expect(failing.mirrored + failing.dropped).toBeGreaterThan(200);
    expect(failing.mirrored + failing.dropped).toBeLessThan(400);
    expect(failing.mirrored).toBeGreaterThan(0);
    expect(failing.errors).toBe(failing.mirrored);
    expect(failing.agreeing).toBe(0);
  });

  it('reports disagreement with its size', async () => {
    await engine.setRoute('shm', route([{ version: '4', fraction: 1 }]));
    await engine.infer({ model: 'shm', inputs: [x] }); // 4 is in the input: the shadow answers NaN
    await engine.infer({ model: 'shm', inputs: [{ ...x, data: new Float32Array([1, 1, 1, 1]) }] }); // agrees: 4
    await new Promise((r) => setTimeout(r, 100));
    const v4 = (await engine.shadowReport('shm')).shadows.find((s) => s.version === '4') as any;
    expect(v4).toMatchObject({ mirrored: 2, compared: 2, agreeing: 1, errors: 0, max_abs_diff: 'Infinity' });
  });
});
