/**
 * The chaos harness (chaos/): its bookkeeping, that a failing check fails the scenario, and two
 * fast scenarios run end to end against real Sluice child processes (dist/src/main.js, built by
 * `npm test`'s pretest). The rest run with `npm run chaos -- all` (see chaos/README.md).
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatReport, runScenario } from '../../chaos/runner.js';
import { check, type Scenario } from '../../chaos/scenario.js';
import { scenarios } from '../../chaos/scenarios/index.js';
import { ok, startLoad, tally, type Answer } from '../../chaos/load.js';
import { TcpProxy } from '../../chaos/tcp-proxy.js';
import { Engine } from '../../src/service/engine.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';

describe('chaos harness', () => {
  it('counts answers by the window their request was sent in, failures by status and code', () => {
    const a = (t: number, status: number, code?: string): Answer => ({ index: t, t, latencyMs: 1, status, code });
    const t = tally([a(1, 200), a(5, 503, 'WORKER_LOST'), a(6, 0), a(7, 200), a(12, 200)], [
      { name: 'before', from: 0, to: 5 },
      { name: 'during', from: 5, to: 10 },
      { name: 'after', from: 10, to: Infinity },
    ]);
    expect(t).toEqual({
      before: { sent: 1, ok: 1, failed: 0, byCode: {} },
      during: { sent: 3, ok: 1, failed: 2, byCode: { '503 WORKER_LOST': 1, 'no answer': 1 } },
      after: { sent: 1, ok: 1, failed: 0, byCode: {} },
    });
  });

  it('fails a scenario when one check fails or it throws, and cleans up either way', async () => {
    let cleaned = 0;
    const failing: Scenario = { name: 't', description: '', needs: [], async run(ctx) {
      ctx.defer(async () => { cleaned++; });
      return { checks: [check('holds', true), check('breaks', false, 'measured 2')], figures: {} };
    } };
    const throwing: Scenario = { name: 't2', description: '', needs: [], async run(ctx) {
      ctx.defer(async () => { cleaned++; });
      throw new Error('boom');
    } };
    const r1 = await runScenario(failing, () => undefined);
    const r2 = await runScenario(throwing, () => undefined);
    expect([r1.pass, r2.pass, cleaned]).toEqual([false, false, 2]);
    expect(formatReport(r1)).toContain('FAIL  breaks\n        measured 2');
    expect(r2.checks[0]!.detail).toContain('boom');
  });

  it('the S3 proxy refuses connections while down and passes bytes again when up, on the same port', async () => {
    const echo = net.createServer((s) => {
      s.on('error', () => undefined); // the proxy resets it when cut
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const proxy = new TcpProxy('127.0.0.1', (echo.address() as net.AddressInfo).port);
    const roundTrip = () => new Promise<string>((resolve) => {
      const c = net.connect(proxy.port, '127.0.0.1', () => c.write('ping'));
      c.on('data', (d) => { resolve(d.toString()); c.destroy(); });
      c.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    try {
      await proxy.up();
      const port = proxy.port;
      expect(await roundTrip()).toBe('ping');
      await proxy.down();
      expect(await roundTrip()).toBe('ECONNREFUSED');
      await proxy.up();
      expect(proxy.port).toBe(port);
      expect(await roundTrip()).toBe('ping');
    } finally {
      await proxy.down();
      echo.close();
    }
  });

  it('load: reopens connections the server closed, and without pipelining keeps one request on the wire per connection', async () => {
    let open = 0;
    let maxOpen = 0;
    const server = http.createServer((req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      req.resume();
      req.on('end', () => setTimeout(() => {
        open--;
        res.end('{}');
      }, 2));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const request = Buffer.from(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}`);
    try {
      const run = (reconnect: boolean) => {
        const load = startLoad({ url, model: 'm', rate: 200, durationS: 1.5, connections: 2, requests: [request], reconnect });
        // Half-way, the server drops every connection (as a restarted server does).
        setTimeout(() => server.closeAllConnections(), 700);
        return load.done;
      };
      const kept = (await run(true)).answers;
      const late = (a: Answer[]) => a.filter((x) => x.t > a[0]!.t + 1_000);
      expect(late(kept).length).toBeGreaterThan(50);
      expect(late(kept).every(ok)).toBe(true);
      // Without reconnecting, the connections' share after the drop is lost: the check above can fail.
      const lost = (await run(false)).answers;
      expect(late(lost).some((a) => !ok(a))).toBe(true);
      // 2 connections, one request on the wire each: never more than 2 at the server at once.
      expect(maxOpen).toBeLessThanOrEqual(2);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('lists every scenario with a unique name, and marks the fast ones CI runs', () => {
    const names = scenarios.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(['worker-crash', 'swap-storm', 'slow-model', 'kill-restart', 'postgres-down', 's3-down', 'overload', 'sigterm', 'disk-full']);
    expect(scenarios.filter((s) => s.fast).map((s) => s.name)).toEqual(['worker-crash', 'swap-storm', 'slow-model']);
  });
});

describe('fixture model sleep_us', () => {
  let engine: Engine;
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo();
    await writeFixture(repo.root, 'sleepy', '1', { op: 'sum', sleep_us: 200_000 }, { maxBatch: 1 });
    engine = await Engine.start({ modelRepository: repo.root, workers: 1, allowFixtureModels: true });
  });
  afterAll(async () => {
    await engine.close();
    await repo.cleanup();
  });

  it('holds its worker for the time asked without spending CPU on it', async () => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await engine.infer({ model: 'sleepy', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: new Float32Array([1, 2, 3, 4]) }] });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    expect(r.outputs[0]!.data[0]).toBe(10);
    expect(ms).toBeGreaterThanOrEqual(195);
    // A busy wait would cost ~200 ms of CPU in this process (the worker is a thread of it).
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(120);
  });
});

// End to end: each starts Sluice as a child process (~10-30 s with load on a 2-core machine).
describe('chaos scenarios (fast subset)', () => {
  for (const name of ['worker-crash', 'swap-storm']) {
    it(`${name} passes`, { timeout: 180_000 }, async () => {
      const r = await runScenario(scenarios.find((s) => s.name === name)!, () => undefined);
      expect(r.pass, formatReport(r)).toBe(true);
    });
  }
});
