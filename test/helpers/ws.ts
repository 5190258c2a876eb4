/** WebSocket helpers for the msgpack stream. */
import crypto from 'node:crypto';
import net from 'node:net';
import { Packr } from 'msgpackr';
import { WebSocket } from 'undici';

export const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export interface Answer {
  id: unknown;
  model_name?: string;
  model_version?: string;
  outputs?: Array<{ name: string; datatype: string; shape: number[]; data: Uint8Array }>;
  error?: string;
  code?: string;
}

/** Opens a stream and collects answers. */
export async function openStream(url: string): Promise<{ ws: WebSocket; answers: Answer[]; next(n: number): Promise<Answer[]> }> {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v2/stream');
  ws.binaryType = 'arraybuffer';
  const answers: Answer[] = [];
  const waiters: Array<() => void> = [];
  ws.addEventListener('message', (ev) => {
    answers.push(packr.unpack(Buffer.from(ev.data as ArrayBuffer)) as Answer);
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', resolve);
    ws.addEventListener('error', reject);
  });
  return {
    ws,
    answers,
    async next(n: number) {
      while (answers.length < n) await new Promise<void>((r) => waiters.push(r));
      return answers;
    },
  };
}

export function f32Frame(id: unknown, model: string, x: Float32Array, rows: number, extra: Record<string, unknown> = {}, input = 'features'): Buffer {
  return packr.pack({
    id,
    model,
    inputs: [{ name: input, datatype: 'FP32', shape: [rows, x.length / rows], data: new Uint8Array(x.buffer, x.byteOffset, x.byteLength) }],
    ...extra,
  });
}

export function f32Of(data: Uint8Array): Float32Array {
  const copy = new Uint8Array(data.byteLength);
  copy.set(data);
  return new Float32Array(copy.buffer);
}

/**
 * A raw WebSocket client on a TCP socket that can stop reading entirely (browsers and undici
 * cannot), to test what the server does with a client that never reads its answers.
 */
export async function rawWebSocket(port: number): Promise<{ socket: net.Socket; send(b: Buffer): boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const key = crypto.randomBytes(16).toString('base64');
  socket.write(`GET /v2/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((resolve) => {
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.pause();
  return {
    socket,
    send(payload: Buffer) {
      // Client frames are masked (RFC 6455): FIN + binary opcode, 64-bit length.
      const mask = crypto.randomBytes(4);
      const header = Buffer.alloc(14);
      header[0] = 0x82;
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(payload.length), 2);
      mask.copy(header, 10);
      const body = Buffer.from(payload);
      for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
      return socket.write(Buffer.concat([header, body]));
    },
  };
}
