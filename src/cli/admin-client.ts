/** A small client of the admin API for the `sluice models`, `route` and `shadow` commands. */
import http from 'node:http';
import https from 'node:https';
import type { Command } from 'commander';
import { SluiceError, isErrorCode } from '../errors.js';
import { Progress } from './progress.js';

export interface AdminTarget {
  url: string;
  key?: string;
}

/** The options every admin command takes: the server and the admin key. */
export function adminOptions(c: Command): Command {
  return c
    .option('--url <url>', 'Sluice server', process.env.SLUICE_URL ?? 'http://127.0.0.1:8000')
    .option('--key <key>', 'admin API key (or SLUICE_API_KEY)');
}

export function adminTarget(o: { url: string; key?: string }): AdminTarget {
  return { url: o.url, key: o.key ?? process.env.SLUICE_API_KEY };
}

function fail(status: number, body: string): never {
  let parsed: { error?: string; code?: string } = {};
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    // not JSON: report the status
  }
  const code = parsed.code && isErrorCode(parsed.code) ? parsed.code : 'INTERNAL';
  throw new SluiceError(code, parsed.error ?? `the server answered ${status}`);
}

/** Sends a request; `body` chunks are written one by one so upload progress can be shown. */
export function request(t: AdminTarget, method: string, path: string, body?: { chunks: Uint8Array[]; headers: Record<string, string>; progress?: Progress }): Promise<unknown> {
  const u = new URL(path, t.url);
  const lib = u.protocol === 'https:' ? https : http;
  const total = body ? body.chunks.reduce((a, c) => a + c.byteLength, 0) : 0;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, {
      method,
      headers: {
        ...(t.key ? { authorization: `Bearer ${t.key}` } : {}),
        ...(body ? { 'content-length': String(total), ...body.headers } : {}),
      },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          if ((res.statusCode ?? 500) >= 400) fail(res.statusCode ?? 500, text);
          resolve(text ? JSON.parse(text) : undefined);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', (e) => reject(new SluiceError('REGISTRY_UNAVAILABLE', `cannot reach ${t.url}: ${e.message}`)));
    if (!body) return req.end();
    let sent = 0;
    const write = (i: number) => {
      if (i >= body.chunks.length) return req.end();
      const c = body.chunks[i]!;
      req.write(c, () => {
        sent += c.byteLength;
        body.progress?.update(sent, 'bytes', sent / total);
        write(i + 1);
      });
    };
    write(0);
  });
}
