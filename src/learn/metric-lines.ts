/** Prometheus text lines for the learning path's counters (merged into /metrics by the caller). */

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function labelled(pairs: Record<string, string>): string {
  const keys = Object.keys(pairs);
  return keys.length === 0 ? '' : '{' + keys.map((k) => `${k}="${esc(pairs[k]!)}"`).join(',') + '}';
}

export function family(out: string[], name: string, type: 'counter' | 'gauge', help: string, rows: Array<[Record<string, string>, number]>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, v] of rows) out.push(`${name}${labelled(labels)} ${v}`);
}

/** Logs at most once per `everyMs` (a full buffer must not turn into a line per request). */
export class RateLimited {
  private last = -Infinity;
  constructor(private readonly everyMs: number) {}

  ready(now = Date.now()): boolean {
    if (now - this.last < this.everyMs) return false;
    this.last = now;
    return true;
  }
}

/** Exponential backoff between retries against an unreachable database. */
export class Backoff {
  private ms: number;
  constructor(private readonly minMs: number, private readonly maxMs: number) {
    this.ms = minMs;
  }

  next(): number {
    const v = this.ms;
    this.ms = Math.min(this.maxMs, this.ms * 2);
    return v;
  }

  reset(): void {
    this.ms = this.minMs;
  }
}
