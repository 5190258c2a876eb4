/** Raw HTTP/1.1 conversations over one net.Socket, for framing and pipelining tests. */
import net from 'node:net';

export interface Conversation {
  socket: net.Socket;
  /** Everything the server wrote so far (latin1). */
  readonly received: string;
  /** Resolves when the server closed the connection (or it broke). */
  closed: Promise<void>;
  /** Resolves once `received` matches `re` (rejects after `ms`). */
  until(re: RegExp, ms?: number): Promise<string>;
  write(data: string | Uint8Array): void;
  destroy(): void;
}

export async function converse(port: number): Promise<Conversation> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let received = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d) => {
    received += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.on('close', () => {
    r();
    for (const w of waiters.splice(0)) w();
  }));
  await new Promise((r) => socket.once('connect', r));
  return {
    socket,
    get received() {
      return received;
    },
    closed,
    until(re, ms = 5000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} within ${ms} ms; got ${JSON.stringify(received.slice(0, 400))}`)), ms);
        const check = () => {
          if (re.test(received)) {
            clearTimeout(timer);
            resolve(received);
          } else if (socket.destroyed) {
            clearTimeout(timer);
            reject(new Error(`closed without ${re}; got ${JSON.stringify(received.slice(0, 400))}`));
          } else waiters.push(check);
        };
        check();
      });
    },
    write: (d) => void socket.write(d),
    destroy: () => socket.destroy(),
  };
}

/** Statuses of the responses in `text`, in order. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** A POST with a JSON body, as raw bytes. */
export function rawPost(path: string, body: string, headers: Record<string, string> = {}): string {
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

export function rawGet(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
}
