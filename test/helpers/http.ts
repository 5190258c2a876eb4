/** A real engine and HTTP server on 127.0.0.1, port 0, for integration tests. */
import net from 'node:net';
import type { Config } from '../../src/config/index.js';
import { HttpServer, type HttpServerOptions } from '../../src/frontend/http/server.js';
import { Engine } from '../../src/service/engine.js';

export interface TestServer {
  engine: Engine;
  server: HttpServer;
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startServer(config: Partial<Config>, opts: HttpServerOptions = {}): Promise<TestServer> {
  const engine = await Engine.start(config);
  const server = new HttpServer(engine, { serverVersion: 'test', ...opts });
  const port = await server.listen('127.0.0.1', 0);
  return {
    engine,
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    async close() {
      await server.close(2000);
      await engine.close();
    },
  };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { ...JSON_HEADERS, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

export async function getJson(url: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url);
  return { status: res.status, json: await res.json() };
}

/**
 * Sends raw bytes on a fresh TCP connection and returns everything the server wrote before
 * closing (or `waitMs` passing). For requests no well-behaved client would send.
 */
export function rawRequest(port: number, chunks: Array<string | Uint8Array>, waitMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      resolve(out);
    }, waitMs);
    sock.on('data', (d) => (out += d.toString('latin1')));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      if (out) resolve(out);
      else reject(e);
    });
    sock.on('connect', () => {
      for (const c of chunks) sock.write(c);
    });
  });
}

/** A valid demo-logistic request body with rows of `value`. */
export function demoBody(rows = 1, value = 0.1, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 100], data: new Array(rows * 100).fill(value) }],
    ...extra,
  };
}

/** Builds a binary-extension body: JSON header then raw tensor bytes. */
export function binaryBody(header: unknown, tensors: Uint8Array[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.byteLength };
}
