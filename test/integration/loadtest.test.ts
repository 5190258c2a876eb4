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

describe('find-max refinement', () => {
  it('bisects between the last passing step and the first failing one', async () => {
    // A real server on 127.0.0.1 whose limit is known exactly: each connection answers 200 up
    // to 250 requests, 500 after. The harness spreads a step's requests over 2 fresh
    // connections, so a 0.5 s step at r req/s puts r/4 on each: rates up to 1,000/s pass.
    const http = await import('node:http');
    const served = new WeakMap<object, number>();
    const server = http.createServer((req, res) => {
      if (req.method === 'GET') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name: 'm', inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }] }));
        return;
      }
      req.resume();
      req.on('end', () => {
        const n = (served.get(req.socket) ?? 0) + 1;
        served.set(req.socket, n);
        res.statusCode = n > 250 ? 500 : 200;
        res.end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const o = { protocol: 'http' as const, url, model: 'm', batch: 1, binary: false, rate: 100, duration: 1, connections: 2, workers: 1, findMax: true, sloMs: 60_000, stepDuration: 0.5, stepFactor: 4, stepRetries: 0, quiet: true };
      // Steps 100, 400 pass and 1,600 fails; without refinement that is all it knows.
      const coarse = await findMax(o);
      expect(coarse.steps.map((x) => [x.rate, x.pass])).toEqual([[100, true], [400, true], [1600, false]]);
      expect(coarse.maxRate).toBe(400);
      // Refined twice: sqrt(400 x 1,600) = 800 passes, then sqrt(800 x 1,600) = 1,131 fails.
      const fine = await findMax({ ...o, refine: 2 });
      expect(fine.steps.map((x) => [Math.round(x.rate), x.pass])).toEqual([[100, true], [400, true], [1600, false], [800, true], [1131, false]]);
      expect(fine.maxRate).toBe(800);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('open-loop without pipelining', () => {
  it('reports when each request was written, later than due when it waited behind an answer', async () => {
    // A real server on 127.0.0.1 that answers each request 150 ms after it arrives.
    const net = await import('node:net');
    const server = net.createServer((socket) => {
      socket.on('data', (d) => {
        const n = d.toString('latin1').split('\r\n\r\n').length - 1;
        for (let i = 0; i < n; i++) setTimeout(() => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), 150);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const outcomes: Array<{ index: number; sentAtMs: number; writtenAtMs?: number; latencyMs: number; status: number }> = [];
    try {
      await runOpenLoop({ host: '127.0.0.1', port, requests: [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')] }, {
        rate: 40, durationS: 0.1, connections: 1, pipeline: false, onOutcome: (o) => outcomes.push(o),
      });
    } finally {
      server.close();
    }
    outcomes.sort((a, b) => a.index - b.index);
    expect(outcomes.map((o) => o.status)).toEqual([200, 200, 200, 200]);
    expect(outcomes[0]!.writtenAtMs! - outcomes[0]!.sentAtMs).toBeLessThan(50);
    for (let i = 1; i < 4; i++) {
      const prev = outcomes[i - 1]!;
      // Due every 25 ms, written only once the previous answer came (150 ms after its write).
      expect(outcomes[i]!.writtenAtMs!).toBeGreaterThanOrEqual(prev.sentAtMs + prev.latencyMs - 1);
      expect(outcomes[i]!.writtenAtMs! - outcomes[i]!.sentAtMs).toBeGreaterThan(100);
    }
  });
});
