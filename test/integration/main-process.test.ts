import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, watch } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, fetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';
import { healthClient } from '../helpers/grpc.js';
import { logisticVersion, registerBody } from '../helpers/server.js';
import { tempRepo, writeFixture } from '../helpers/repo.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a new TCP connection to the URL's port is accepted (false: refused). */
function accepts(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(Number(new URL(url).port), '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A connection that answers one request, then stays open and idle; `closed` settles when the server closes it. */
async function idleKeepAlive(url: string): Promise<{ closed: Promise<void> }> {
  const s = net.connect(Number(new URL(url).port), '127.0.0.1');
  await new Promise<void>((resolve, reject) => s.once('connect', () => resolve()).once('error', reject));
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  s.on('error', () => undefined);
  s.write('GET /v2/health/live HTTP/1.1\r\nHost: sluice\r\n\r\n');
  const head = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString('latin1'))));
  if (!head.startsWith('HTTP/1.1 200')) throw new Error(`idle connection's request: ${head.slice(0, 80)}`);
  s.on('data', () => undefined);
  return { closed };
}

/** A fixture request on a connection of its own (a new connection, as a load balancer would open). */
function inferOnNewConnection(url: string, model: string): Promise<{ status: number; body: any }> {
  const agent = new Agent({ connections: 1 });
  return fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    dispatcher: agent,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
  }).then(async (r) => ({ status: r.status, body: await r.json() })).finally(() => agent.close());
}

/**
 * A fixture request over a raw keep-alive connection of its own; resolves with the response head
 * (status line and headers, as written on the wire) and body once the answer is complete.
 */
function inferRaw(url: string, model: string): Promise<{ status: number; head: string; body: any }> {
  const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(new URL(url).port), '127.0.0.1');
    let text = '';
    s.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1] ?? -1);
      if (end < 0 || length < 0 || text.length < end + 4 + length) return;
      s.destroy();
      resolve({ status: Number(text.slice(9, 12)), head: text.slice(0, end), body: JSON.parse(text.slice(end + 4, end + 4 + length)) });
    });
    s.on('error', reject);
    s.on('close', () => reject(new Error(`closed before the answer; got ${JSON.stringify(text)}`)));
    s.write(`POST /v2/models/${model}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  });
}

describe('npm start (dist/src/main.js)', () => {
  let repo: Awaited<ReturnType<typeof tempRepo>>;

  beforeAll(async () => {
    repo = await tempRepo(true);
    await writeFixture(repo.root, 'slow', '1', { op: 'sum', delay_us: 600_000 }, { maxBatch: 1 });
    await writeFixture(repo.root, 'slower', '1', { op: 'sum', delay_us: 3_500_000 }, { maxBatch: 1 });
    await writeFixture(repo.root, 'fast', '1', { op: 'sum' }, { maxBatch: 64 });
  });
  afterAll(() => repo.cleanup());

  it('serves the bundled demo models on the embedded defaults, ready within seconds', async () => {
    const { child, http: url, startMs: ms, exited } = await startSluiceProcess();
    try {
      const ready = await fetch(`${url}/v2/health/ready`);
      expect(ready.status).toBe(200);
      const index = (await (await fetch(`${url}/v2/repository/index`)).json()) as Array<{ name: string; state: string }>;
      expect(index.map((m) => `${m.name}:${m.state}`)).toEqual(['demo-bandit:READY', 'demo-logistic:READY', 'demo-onnx:READY']);
      expect(ms).toBeLessThan(20_000);
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it('on SIGTERM turns not-ready first, finishes in-flight requests, and exits 0', async () => {
    const { child, http: url, exited } = await startSluiceProcess({ env: { SLUICE_MODEL_REPOSITORY: repo.root, SLUICE_ALLOW_FIXTURE_MODELS: 'true' } });
    // One keep-alive connection, opened before the signal, to ask for readiness during the drain.
    const dispatcher = new Agent({ connections: 1, pipelining: 0 });
    const probe = new Agent({ connections: 1 });
    expect((await fetch(`${url}/v2/health/ready`, { dispatcher: probe })).status).toBe(200);
    const slow = fetch(`${url}/v2/models/slow/infer`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
    });
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    const during = await fetch(`${url}/v2/health/ready`, { dispatcher: probe });
    expect(during.status).toBe(503);
    expect(await during.json()).toMatchObject({ code: 'SHUTTING_DOWN' });
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ outputs: [{ data: [10] }] });
    expect(await exited).toBe(0);
    await dispatcher.close();
    await probe.close();
  });

  it('SIGTERM with SLUICE_DRAIN_GRACE_MS: not ready at once, yet new connections are answered for the grace period; then refused; in-flight requests finish; exit 0', async () => {
    const graceMs = 2000;
    const { child, http: url, grpc: grpcAddress, exited } = await startSluiceProcess({
      env: { SLUICE_MODEL_REPOSITORY: repo.root, SLUICE_ALLOW_FIXTURE_MODELS: 'true', SLUICE_WORKERS: '3', SLUICE_DRAIN_GRACE_MS: String(graceMs) },
    });
    let exitedAt = Infinity;
    void exited.then(() => (exitedAt = Date.now()));
    const probe = new Agent({ connections: 1 });
    const health = healthClient(grpcAddress);
    const grpcHealth = () => new Promise<string>((resolve, reject) => health.Check({ service: '' }, (e: Error | null, r: { status: string }) => (e ? reject(e) : resolve(r.status))));
    try {
      expect((await fetch(`${url}/v2/health/ready`, { dispatcher: probe })).status).toBe(200);
      expect(await grpcHealth()).toBe('SERVING');
      // Keep-alive connections that go idle before the signal: the server closes them once the
      // drain is done, instead of holding the exit until their idle timeout (~10 s). Sixteen, so
      // that the kernel puts some on each I/O thread (an I/O thread's exit is awaited; the main
      // thread's sockets end with the process).
      const idle = await Promise.all(Array.from({ length: 16 }, () => idleKeepAlive(url)));
      let idleClosedAt = 0;
      for (const c of idle) void c.closed.then(() => (idleClosedAt = Math.max(idleClosedAt, Date.now())));
      const inFlightAtSignal = inferOnNewConnection(url, 'slow');
      await sleep(100);
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      await sleep(100);

      // The grace period: readiness false on both transports, but a new connection is answered.
      const ready = await fetch(`${url}/v2/health/ready`, { dispatcher: probe });
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ code: 'SHUTTING_DOWN' });
      expect(await grpcHealth()).toBe('NOT_SERVING');
      expect(await inferOnNewConnection(url, 'fast')).toMatchObject({ status: 200, body: { outputs: [{ data: [10] }] } });
      // Still running when the grace period ends: it must be allowed to finish, and its answer
      // closes the keep-alive connection (Connection: close), as the server is about to exit.
      let slowerDoneAt = Infinity;
      const slower = inferRaw(url, 'slower').finally(() => (slowerDoneAt = Date.now()));
      expect(Date.now() - signalledAt).toBeLessThan(graceMs);

      // After the grace period, new connections are refused (while `slower` keeps the process up).
      while (await accepts(url)) await sleep(25);
      const refusedAt = Date.now();
      expect(refusedAt - signalledAt).toBeGreaterThanOrEqual(graceMs);
      expect(refusedAt).toBeLessThan(slowerDoneAt);

      expect(await inFlightAtSignal).toMatchObject({ status: 200, body: { outputs: [{ data: [10] }] } });
      const slowerAnswer = await slower;
      expect(slowerAnswer).toMatchObject({ status: 200, body: { outputs: [{ data: [10] }] } });
      expect(slowerAnswer.head).toMatch(/\r\nconnection: close(\r\n|$)/i);
      expect(await exited).toBe(0);
      expect(exitedAt).toBeGreaterThanOrEqual(slowerDoneAt);
      // Closed once the grace period is over and its thread has drained (the other I/O thread
      // may still be finishing `slower`), not held until its idle timeout (10 s after its
      // request, ~6.5 s after `slower` ends): the exit follows the drain.
      await Promise.all(idle.map((c) => c.closed));
      expect(idleClosedAt - signalledAt).toBeGreaterThanOrEqual(graceMs);
      expect(exitedAt - slowerDoneAt).toBeLessThan(4_000);
    } finally {
      health.close();
      await probe.close();
      child.kill('SIGKILL');
    }
  }, 180_000);

  it.skipIf(process.platform !== 'linux')('the launcher passes nodeFlags to node before the script (Linux: read back from /proc/<pid>/cmdline)', async () => {
    const { child, exited } = await startSluiceProcess({ env: { SLUICE_MODEL_REPOSITORY: repo.root, SLUICE_ALLOW_FIXTURE_MODELS: 'true' }, nodeFlags: ['--min-semi-space-size=2'] });
    try {
      const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      expect(argv.slice(1)).toEqual(['--min-semi-space-size=2', expect.stringMatching(/dist\/src\/main\.js$/)]);
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 180_000);

  it('Ctrl-C (SIGINT) skips the grace period: the process exits 0 at once', async () => {
    const { child, exited } = await startSluiceProcess({ env: { SLUICE_MODEL_REPOSITORY: repo.root, SLUICE_ALLOW_FIXTURE_MODELS: 'true', SLUICE_DRAIN_GRACE_MS: '60000' } });
    const t0 = Date.now();
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 180_000);

  it('a SIGKILL while a 200 MB upload is being written leaves a partial file; the next start removes it', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'sluice-kill-'));
    const tmp = path.join(dataDir, 'artifacts', 'tmp');
    const partials = () => readdirSync(tmp).filter((n) => n.startsWith('.tmp-'));
    const adminKey = `sk_test_admin_${randomBytes(24).toString('hex')}`;
    const env = { SLUICE_DATA_DIR: dataDir, SLUICE_ADMIN_KEY: adminKey, SLUICE_MODEL_REPOSITORY: repo.root, SLUICE_ALLOW_FIXTURE_MODELS: 'true' };
    const payload = randomBytes(200 << 20);
    try {
      // The body is read whole, then written to a temporary file and renamed: kill during the write.
      let killed = false;
      for (let attempt = 0; attempt < 3 && !killed; attempt++) {
        const first = await startSluiceProcess({ env });
        mkdirSync(tmp, { recursive: true });
        const seen = new Promise<void>((resolve) => {
          const w = watch(tmp, (_e, name) => {
            if (name?.startsWith('.tmp-')) {
              first.child.kill('SIGKILL');
              w.close();
              resolve();
            }
          });
          void first.exited.then(() => {
            w.close();
            resolve();
          });
        });
        const { manifest } = logisticVersion(1);
        const { body, headers } = registerBody({ manifest: { ...manifest, name: `big${attempt}`, version: '1' } }, payload);
        const upload = fetch(`${first.http}/v1/admin/models/big${attempt}/versions`, { method: 'POST', headers: { ...headers, authorization: `Bearer ${adminKey}` }, body })
          .then((r) => r.status, () => 'reset');
        await Promise.race([seen, upload]);
        if (await upload === 'reset') {
          await first.exited;
          killed = partials().length > 0;
        } else {
          first.child.kill('SIGKILL'); // the write finished before we saw it: try again
          await first.exited;
        }
      }
      expect(killed).toBe(true);
      expect(partials().length).toBeGreaterThan(0);

      const second = await startSluiceProcess({ env });
      expect(partials()).toEqual([]);
      expect(readdirSync(path.join(dataDir, 'artifacts', 'sha256')).every((n) => statSync(path.join(dataDir, 'artifacts', 'sha256', n)).isFile())).toBe(true);
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 400_000); // up to four starts of the server on a loaded 2-core machine
});
