/** What every route handler needs: the engine, limits, access control and counters. */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Engine } from '../../service/engine.js';
import { errorFields, log } from '../../log.js';
import type { Scope } from '../../auth/scopes.js';
import { BodyPool } from './body-pool.js';
import { sendError, type Exchange } from './reply.js';

/**
 * Decides whether a request may act with `scope`, from its Authorization header; throws a
 * coded UNAUTHENTICATED / PERMISSION_DENIED error to refuse. Returns the caller's name for
 * audit. The default allows everything (no registry of keys configured).
 */
export type Authorize = (scope: Scope, authorization: string) => string | undefined | Promise<string | undefined>;

export interface HttpOptions {
  maxBodyBytes: number;
  maxJsonDepth: number;
  authorize: Authorize;
}

export class HttpContext {
  /** Requests by route and status, for /metrics. */
  readonly counters = new Map<string, number>();
  /** Reused buffers for large infer bodies. */
  readonly bodies = new BodyPool();
  inFlight = 0;
  draining = false;

  constructor(readonly engine: Engine, readonly opts: HttpOptions) {}

  /**
   * Starts an exchange: attaches the abort handler uWebSockets.js requires before any async
   * step, and counts it in flight until it finishes. `admitted`: admission control admitted
   * it (see overload.ts), and is told when it finishes.
   */
  begin(res: HttpResponse, route: string, admitted = false): Exchange {
    this.inFlight++;
    const x: Exchange = {
      res,
      aborted: false,
      done: false,
      onFinish: (status, code) => {
        this.inFlight--;
        if (admitted) this.engine.admission.release();
        const key = `${route} ${status}`;
        this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
        // Errors are counted where they are returned to clients, whatever raised them.
        if (code) this.engine.metrics.countError(code);
      },
    };
    res.onAborted(() => {
      x.aborted = true;
      if (!x.done) {
        x.done = true;
        x.onFinish(499);
      }
    });
    return x;
  }

  /**
   * Runs an async handler, turning any failure into a coded error response. `after` runs once
   * the handler has settled and any error has been sent (to give back a pooled body).
   */
  guard(x: Exchange, fn: () => Promise<void> | void, after?: () => void): void {
    let p: Promise<void> | void;
    try {
      p = fn();
    } catch (e) {
      this.fail(x, e);
      after?.();
      return;
    }
    if (!p) {
      after?.();
      return;
    }
    p.then(after, (e: unknown) => {
      this.fail(x, e);
      after?.();
    });
  }

  fail(x: Exchange, e: unknown, close = false): void {
    if (!(e instanceof Error && 'code' in e)) log.error('http: unexpected error', errorFields(e));
    sendError(x, e, close);
  }
}

/** A URL parameter, percent-decoded (model names and versions are plain, but be safe). */
export function param(req: HttpRequest, i: number): string {
  const raw = req.getParameter(i);
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
