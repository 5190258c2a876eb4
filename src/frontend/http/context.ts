/** What every route handler needs: the engine, limits, access control and counters. */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { Service } from '../../service/service.js';
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
  /** InferRequest.blockUs for pooled models (SLUICE_HTTP_POOL_WAIT_US). */
  poolWaitUs: number;
}

export class HttpContext {
  /** Requests by route and status, for /metrics. */
  readonly counters = new Map<string, number>();
  /** Reused buffers for large infer bodies. */
  readonly bodies = new BodyPool();
  inFlight = 0;
  /** Readiness false (503) while requests are still answered: the first step of a drain. */
  unready = false;
  /** New work refused (SHUTTING_DOWN): the listener is closed, in-flight requests finish. */
  draining = false;

  /** Seconds a refused client is told to wait (SLUICE_ADMISSION_RETRY_AFTER_S), as a header value. */
  readonly retryAfter: string;

  constructor(readonly engine: Service, readonly opts: HttpOptions) {
    this.retryAfter = String(engine.admission.o.retryAfterS);
  }

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
      paused: false,
      retryAfter: this.retryAfter,
      onFinish: (status, code) => {
        this.inFlight--;
        if (admitted) this.engine.admission.release();
        const key = `${route} ${status}`;
        this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
        // Errors are counted where they are returned to clients, whatever raised them.
        if (code) this.engine.metrics.countError(code);
      },
      closing: () => this.draining,
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
   * the handler has settled and any error has been sent (to give back a pooled body). While an
   * answer is pending the socket is paused (see Exchange.paused) unless `hold` is false (a
   * WebSocket upgrade, whose client leaving must still be noticed during authorization).
   */
  guard(x: Exchange, fn: () => Promise<void> | void, after?: () => void, hold = true): void {
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
    // The answer comes later: hold the connection's next pipelined request back until then.
    if (hold) this.hold(x);
    p.then(after, (e: unknown) => {
      this.fail(x, e);
      after?.();
    });
  }

  /** Pauses the exchange's socket until its answer is written (see Exchange.paused). */
  hold(x: Exchange): void {
    if (x.done || x.aborted || x.paused) return;
    x.paused = true;
    x.res.pause();
  }

  /**
   * Asks `authorize` before any of the body is read. Returns false (the exchange is answered
   * 401/403, closing the connection) on a refusal known at once; otherwise the pending decision
   * as a promise for readBody's gate, or undefined when it was granted at once.
   */
  authorizeFirst(x: Exchange, scope: Scope, authorization: string): false | Promise<unknown> | undefined {
    let who: ReturnType<Authorize>;
    try {
      who = this.opts.authorize(scope, authorization);
    } catch (e) {
      this.fail(x, e, true);
      return false;
    }
    return who instanceof Promise ? who : undefined;
  }

  /** readBody's pause/resume for an exchange whose body waits on its authorization. */
  bodyHold(x: Exchange): { pause(): void; resume(): boolean } {
    return {
      pause: () => this.hold(x),
      resume: () => {
        if (x.aborted || x.done) return false;
        if (x.paused) {
          x.paused = false;
          x.res.resume();
        }
        return true;
      },
    };
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
