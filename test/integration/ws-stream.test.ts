import crypto from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestServer } from '../helpers/http.js';
import { randomF32 } from '../helpers/random.js';
import { demoWeights, logistic, writeFixture } from '../helpers/repo.js';
import { startRepoServer } from '../helpers/server.js';
import { f32Frame, f32Of, openStream, packr, rawWebSocket } from '../helpers/ws.js';

const w = demoWeights();

describe('WebSocket msgpack stream (/v2/stream)', () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startRepoServer({ workers: 1, allowFixtureModels: true, streamMaxInFlight: 4 }, async (root) => {
      await writeFixture(root, 'slow', '1', { op: 'sum', delay_us: 100_000 }, { maxBatch: 1, cols: 100 });
    });
  });
  afterAll(() => s.close());

  it('answers every frame with its id, good and bad interleaved, on one connection', async () => {
    const st = await openStream(s.url);
    const xs = new Map<number, Float32Array>();
    for (let i = 0; i < 60; i++) {
      const x = randomF32(3 * 100, i);
      xs.set(i, x);
      if (i % 6 === 5) st.ws.send(f32Frame(i, 'demo-logistic', randomF32(99, i), 1));
      else st.ws.send(f32Frame(i, i % 2 ? 'demo-onnx' : 'demo-logistic', x, 3));
      // Keep within the stream's window (2 x 4 unanswered).
      if (i % 6 === 5) await st.next(i + 1);
    }
    const answers = await st.next(60);
    expect(new Set(answers.map((a) => a.id)).size).toBe(60);
    for (const a of answers) {
      const i = a.id as number;
      if (i % 6 === 5) {
        expect(a).toMatchObject({ code: 'SHAPE_MISMATCH' });
        continue;
      }
      expect(a.model_version).toBe('1');
      expect(a.outputs![0]!.shape).toEqual([3, 1]);
      if (i % 2 === 0) {
        const out = f32Of(a.outputs![0]!.data);
        for (let r = 0; r < 3; r++) expect(out[r]).toBeCloseTo(logistic(xs.get(i)!.subarray(r * 100, (r + 1) * 100), w, 0.25), 6);
      }
    }
    st.ws.close();
  });

  it('answers text frames, malformed msgpack and bad requests with coded errors, and stays open', async () => {
    const st = await openStream(s.url);
    st.ws.send('hello');
    st.ws.send(Buffer.from([0xc1, 0xff, 0x00]));
    st.ws.send(packr.pack({ id: 'x', model: 'nope', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 1], data: new Uint8Array(4) }] }));
    st.ws.send(packr.pack({ id: 'y', model: 'demo-logistic', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: [1, 2, 3] }] }));
    st.ws.send(f32Frame('z', 'demo-logistic', randomF32(100, 1), 1));
    const answers = await st.next(5);
    expect(answers.map((a) => a.code ?? 'ok')).toEqual(['MALFORMED_REQUEST', 'MALFORMED_REQUEST', 'MODEL_NOT_FOUND', 'INVALID_ARGUMENT', 'ok']);
    expect(answers[2]!.id).toBe('x');
    // Requests refused while decoding keep their id too.
    expect(answers[3]!.id).toBe('y');
    st.ws.close();
  });

  it('refuses requests beyond its window with OVERLOADED, answering the rest', async () => {
    const st = await openStream(s.url);
    // 100 ms each on one worker: the window of 2 x 4 fills at once.
    for (let i = 0; i < 12; i++) st.ws.send(f32Frame(i, 'slow', randomF32(100, i), 1, {}, 'x'));
    const answers = await st.next(12);
    const overloaded = answers.filter((a) => a.code === 'OVERLOADED');
    expect(overloaded.length).toBeGreaterThanOrEqual(4);
    expect(answers.filter((a) => a.outputs).length).toBe(12 - overloaded.length);
    st.ws.close();
  });

  it('closes a connection that never reads its answers, and memory stays bounded', async () => {
    const raw = await rawWebSocket(s.port);
    const x = randomF32(1024 * 100, 3);
    const before = s.engine.modelStats('demo-logistic')[0]!.success;
    const closed = new Promise((r) => raw.socket.once('close', r));
    // 4 MB of answers would fit the high-water mark; send far more requests than that.
    for (let i = 0; i < 3000; i++) {
      if (raw.socket.destroyed) break;
      if (!raw.send(f32Frame(i, 'demo-logistic', x, 1024))) await new Promise((r) => setTimeout(r, 1));
    }
    raw.socket.resume();
    await closed;
    const processed = s.engine.modelStats('demo-logistic')[0]!.success - before;
    expect(processed).toBeLessThan(3000);
    // The server is fine.
    const st = await openStream(s.url);
    st.ws.send(f32Frame('ok', 'demo-logistic', randomF32(100, 1), 1));
    expect((await st.next(1))[0]!.outputs).toBeDefined();
    st.ws.close();
  });
});

describe('WebSocket upgrade accounting', () => {
  it('counts a stream in flight only until it is upgraded, and a client that leaves during authorization once (499, no upgrade)', async () => {
    let gate: Promise<void> | undefined;
    let authorizing = 0;
    const s = await startRepoServer({ workers: 0, startupModels: 'none' }, undefined, {
      authorize: async () => {
        authorizing++;
        if (gate) await gate;
        return undefined;
      },
    });
    try {
      const ctx = s.server.ctx;
      const st = await openStream(s.url);
      expect(ctx.inFlight).toBe(0);
      expect(ctx.counters.get('stream 101')).toBe(1);
      st.ws.close();

      // Authorization that only finishes after the client has gone.
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      const before = authorizing;
      const sock = net.connect(s.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write(`GET /v2/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      while (authorizing === before) await new Promise((r) => setTimeout(r, 5));
      expect(ctx.inFlight).toBe(1);
      sock.destroy();
      while (ctx.counters.get('stream 499') !== 1) await new Promise((r) => setTimeout(r, 5));
      expect(ctx.inFlight).toBe(0);
      release();
      await new Promise((r) => setTimeout(r, 50));
      // Counted once: not finished a second time as 101, and no upgrade of the gone response.
      expect(ctx.inFlight).toBe(0);
      expect(ctx.counters.get('stream 101')).toBe(1);
      expect(ctx.counters.get('stream 500')).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});
