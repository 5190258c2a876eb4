import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Activation, createRng, dot, gemv } from '../../src/native.js';
import { projectRoot } from '../../src/paths.js';

interface Report {
  maxDiff: number;
  first: number[];
  seq: number[];
  dot: number;
}

describe('native addon in worker threads', () => {
  it('loads and computes in 8 worker threads at once, matching the main thread', async () => {
    const threads = 8;
    const barrier = new SharedArrayBuffer(4);
    const nativeModule = pathToFileURL(path.join(projectRoot, 'dist/src/native.js')).href;
    const reports = await Promise.all(
      Array.from({ length: threads }, () =>
        new Promise<Report>((resolve, reject) => {
          const w = new Worker(new URL('../fixtures/native-thread-worker.mjs', import.meta.url), {
            workerData: { nativeModule, barrier, threads, seed: 2024 },
          });
          w.once('message', resolve);
          w.once('error', reject);
          w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited ${code}`)));
        }),
      ),
    );
    const rows = 64;
    const cols = 100;
    const x = new Float32Array(rows * cols).map((_, i) => Math.sin(i));
    const w = new Float32Array(cols).map((_, i) => Math.cos(i));
    const out = new Float32Array(rows);
    gemv(x, rows, cols, w, 1, new Float32Array([0.25]), Activation.sigmoid, out);
    const rng = createRng(2024);
    const seq = [rng.nextF64(), rng.gamma(2.5), rng.beta(2, 3), rng.thompsonSelect(new Float64Array([1, 2, 3]), new Float64Array([3, 2, 1]))];
    for (const r of reports) {
      expect(r.maxDiff).toBeLessThan(1e-6);
      expect(r.first).toEqual(Array.from(out.subarray(0, 4)));
      expect(r.seq).toEqual(seq);
      expect(r.dot).toBe(dot(x.subarray(0, 100), w));
    }
  });
});
