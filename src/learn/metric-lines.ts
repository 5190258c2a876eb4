/** The learning path's rate-limited log lines and retry backoff (its /metrics lines: src/metrics/families.ts). */

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
