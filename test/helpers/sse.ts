/** A server-sent events client for tests: fetch() with headers, the stream parsed as it arrives. */

export interface SseEvent {
  type: string;
  data: string;
}

export interface SseStream {
  status: number;
  headers: Headers;
  /** Every event read so far (comments too, as type 'comment'; `retry:` lines as type 'retry'). */
  events: SseEvent[];
  /** The next event of `type` (default 'message') after those already taken by next(). */
  next(type?: string, ms?: number): Promise<SseEvent>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  const events: SseEvent[] = [];
  const taken = new Set<SseEvent>();
  const waiters = new Set<() => void>();
  let finished = false;
  const ended = (async () => {
    if (!res.ok || !res.body) return;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let type = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) events.push({ type: 'comment', data: line.slice(1).trim() });
            else if (line.startsWith('retry:')) events.push({ type: 'retry', data: line.slice(6).trim() });
            else if (line.startsWith('event:')) type = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (data.length > 0) events.push({ type, data: data.join('\n') });
          for (const w of waiters) w();
        }
      }
    } catch {
      // aborted by close()
    } finally {
      finished = true;
      for (const w of waiters) w();
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    events,
    ended,
    close: () => abort.abort(),
    next(type = 'message', ms = 10_000) {
      return new Promise((resolve, reject) => {
        const look = () => {
          const e = events.find((x) => x.type === type && !taken.has(x));
          if (e) {
            taken.add(e);
            done();
            resolve(e);
          } else if (finished) {
            done();
            reject(new Error(`the stream ended before a ${type} event`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${type} event within ${ms} ms`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(look);
        };
        waiters.add(look);
        look();
      });
    },
  };
}
