/**
 * Several worker threads serving one port (src/net/reuseport.ts, groundwork for I/O threads):
 * each thread has its own SO_REUSEPORT socket, the kernel spreads connections over them, every
 * connection is answered, every thread serves some, and stopping the threads releases the port
 * and lets each thread exit on its own.
 */
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { closeReusePort, listenReusePort, reserveReusePort } from '../../src/native.js';
import { listenShared, reservePort } from '../../src/net/reuseport.js';
import { projectRoot } from '../../src/paths.js';

const netModule = pathToFileURL(path.join(projectRoot, 'dist/src/net/reuseport.js')).href;
const HOST = '127.0.0.1';
const CONNECTIONS = 40;

interface Thread {
  worker: Worker;
  threadId: number;
  port: number;
  exited: Promise<number>;
}

const started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
});

async function startThread(kind: 'grpc' | 'uws', port: number): Promise<Thread> {
  const worker = new Worker(new URL('../fixtures/shared-port-worker.mjs', import.meta.url), { workerData: { kind, host: HOST, port, netModule } });
  started.push(worker);
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const ready = await new Promise<{ port: number; threadId: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, threadId: ready.threadId, port: ready.port, exited };
}

/** Stops a thread: its counts, and the exit code it then reaches with nothing left to run. */
async function stopThread(t: Thread): Promise<{ calls: number; exitCode: number }> {
  const report = new Promise<{ calls: number }>((resolve) => t.worker.once('message', resolve));
  t.worker.postMessage('stop');
  const { calls } = await report;
  const exitCode = await Promise.race([t.exited, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))]);
  return { calls, exitCode };
}

/** Resolves when `port` can be bound exclusively again (no socket of the group is left). */
function bindExclusively(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: HOST, port, exclusive: true }, () => s.close(() => resolve()));
  });
}

function tally(ids: number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

const WhoClient = grpc.makeGenericClientConstructor({
  Who: { path: '/test.Threads/Who', requestStream: false, responseStream: false,
    requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b },
}, 'Threads');

/** `connections` clients, each on its own TCP connection, each making `calls` calls: the thread ids that answered. */
async function grpcWho(port: number, connections: number, calls: number): Promise<number[]> {
  const answers: number[] = [];
  await Promise.all(Array.from({ length: connections }, async () => {
    // A local subchannel pool: each client has its own TCP connection.
    const client = new WhoClient(`${HOST}:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as grpc.Client & {
      Who(req: Buffer, cb: (e: grpc.ServiceError | null, r?: Buffer) => void): void;
    };
    try {
      for (let i = 0; i < calls; i++) {
        const r = await new Promise<Buffer>((resolve, reject) => client.Who(Buffer.alloc(0), (e, v) => (e ? reject(e) : resolve(v!))));
        answers.push(Number(r.toString()));
      }
    } finally {
      client.close();
    }
  }));
  return answers;
}

describe('native SO_REUSEPORT sockets', () => {
  it('bind port 0, then the same port again; an exclusive bind of it fails until all are closed', async () => {
    const a = listenReusePort(HOST, 0);
    const b = listenReusePort(HOST, a.port);
    expect(b.port).toBe(a.port);
    await expect(bindExclusively(a.port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    closeReusePort(a.fd);
    closeReusePort(b.fd);
    await bindExclusively(a.port);
  });

  it('serves IPv4 and IPv6 literals and resolves names', async () => {
    const hello = async (host: string) => {
      const l = await listenShared(host, 0, (s) => s.end('hi'));
      try {
        return await new Promise<string>((resolve, reject) => {
          const c = net.connect(l.port, (l.server.address() as net.AddressInfo).address);
          let data = '';
          c.on('data', (d) => (data += d)).on('end', () => resolve(data)).on('error', reject);
        });
      } finally {
        await l.close();
      }
    };
    expect(await hello('127.0.0.1')).toBe('hi');
    expect(await hello('localhost')).toBe('hi');
    let v6: string | undefined;
    try {
      v6 = await hello('::1');
    } catch (e) {
      // A host without IPv6 refuses ::1; that refusal must be the coded socket error.
      expect((e as { code?: string }).code).toBe('ERR_NATIVE_SOCKET');
    }
    if (v6 !== undefined) expect(v6).toBe('hi');
  });

  it('gives coded errors for bad hosts, ports in exclusive use, and foreign descriptors', async () => {
    expect(() => listenReusePort('not-an-ip', 0)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    expect(() => listenReusePort(HOST, 65_536)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    expect(() => listenReusePort(HOST, 'x' as unknown as number)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    const plain = net.createServer();
    await new Promise<void>((r) => plain.listen({ host: HOST, port: 0, exclusive: true }, r));
    const port = (plain.address() as net.AddressInfo).port;
    expect(() => listenReusePort(HOST, port)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_SOCKET' }));
    expect(() => reserveReusePort(HOST, port)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_SOCKET' }));
    // stdin/stdout and a plain listener are not ours: refused, and left open.
    expect(() => closeReusePort(1)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    const plainFd = (plain as unknown as { _handle: { fd: number } })._handle.fd;
    expect(() => closeReusePort(plainFd)).toThrow(expect.objectContaining({ code: 'ERR_NATIVE_INVALID_ARGUMENT' }));
    await new Promise<void>((r) => plain.close(() => r()));
  });
});

describe('two worker threads on one port', () => {
  it('gRPC through injected connections: every call answered, both threads serve, port released', async () => {
    const first = await startThread('grpc', 0);
    const second = await startThread('grpc', first.port);
    expect(second.port).toBe(first.port);

    const answers = await grpcWho(first.port, CONNECTIONS, 3);

    expect(answers).toHaveLength(CONNECTIONS * 3);
    const byThread = tally(answers);
    expect([...byThread.keys()].sort()).toEqual([first.threadId, second.threadId].sort());
    const [a, b] = [await stopThread(first), await stopThread(second)];
    expect(a.calls).toBe(byThread.get(first.threadId));
    expect(b.calls).toBe(byThread.get(second.threadId));
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    await bindExclusively(first.port);
  });

  it('when one thread stops, the other serves every new connection (as a replaced I/O thread would need)', async () => {
    const first = await startThread('grpc', 0);
    const second = await startThread('grpc', first.port);
    expect((await stopThread(first)).exitCode).toBe(0);
    const answers = await grpcWho(first.port, CONNECTIONS, 1);
    expect(tally(answers)).toEqual(new Map([[second.threadId, CONNECTIONS]]));
    expect(await stopThread(second)).toEqual({ calls: CONNECTIONS, exitCode: 0 });
    await bindExclusively(first.port);
  });

  it('uWebSockets.js apps on a reserved port: every request answered, both threads serve, port released', async () => {
    const reservation = await reservePort(HOST, 0);
    const threads = [await startThread('uws', reservation.port), await startThread('uws', reservation.port)];
    reservation.release();
    expect(threads.map((t) => t.port)).toEqual([reservation.port, reservation.port]);

    // agent: false — a new TCP connection per request.
    const get = () => new Promise<number>((resolve, reject) => {
      http.get({ host: HOST, port: reservation.port, path: '/who', agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d)).on('end', () => resolve(Number(body)));
      }).on('error', reject);
    });
    const answers = await Promise.all(Array.from({ length: CONNECTIONS }, get));

    const byThread = tally(answers);
    expect([...byThread.keys()].sort()).toEqual(threads.map((t) => t.threadId).sort());
    const reports = [await stopThread(threads[0]!), await stopThread(threads[1]!)];
    expect(reports.map((r) => r.calls)).toEqual(threads.map((t) => byThread.get(t.threadId)));
    expect(reports.map((r) => r.exitCode)).toEqual([0, 0]);
    await bindExclusively(reservation.port);
  });

  it('a uWebSockets.js app started on port 0 cannot be joined (why reservePort exists)', async () => {
    const first = await startThread('uws', 0);
    const joined = startThread('uws', first.port);
    await expect(joined).rejects.toThrow(/could not listen/);
    expect((await stopThread(first)).exitCode).toBe(0);
  });
});
