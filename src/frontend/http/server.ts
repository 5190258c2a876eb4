/**
 * The HTTP front end: Open Inference Protocol v2 (plus Triton's extensions) and KServe v1
 * predict on uWebSockets.js, a thin adapter over the engine. Binds to 127.0.0.1 unless told
 * otherwise. Draining is two steps: `unready()` turns readiness false while everything is still
 * answered (the grace period load balancers need), then `close()` closes the listener, lets
 * in-flight requests finish, and only then does the caller stop the engine.
 */
import uWS from 'uWebSockets.js';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { SluiceError } from '../../errors.js';
import { PrometheusExporter } from '../../metrics/prometheus.js';
import type { Service } from '../../service/service.js';
import { HttpContext, type Authorize, type HttpOptions } from './context.js';
import { finish } from './reply.js';
import { framingError } from './framing.js';
import { inferRoute } from './routes/infer.js';
import { predictRoute } from './routes/v1.js';
import { feedbackRoute } from './routes/feedback.js';
import * as v2 from './routes/v2.js';
import { adminRoutes, type AdminDeps, type Method } from './routes/admin.js';
import { attachStream } from '../stream/websocket.js';
import { dashboardRoutes } from './routes/dashboard.js';
import type { DashboardFeed } from '../../service/dashboard-feed.js';

type Handler = (res: HttpResponse, req: HttpRequest) => void;

const allowAll: Authorize = () => undefined;

export interface HttpServerOptions extends Partial<HttpOptions> {
  /** Reported by GET /v2. */
  serverVersion?: string;
  /** The registry behind the admin API (no admin routes without it). */
  admin?: AdminDeps;
  /** This I/O thread's dashboard feed (no dashboard without it). */
  dashboard?: DashboardFeed;
}

export class HttpServer {
  readonly ctx: HttpContext;
  private readonly app: TemplatedApp;
  private listenSocket: us_listen_socket | undefined;
  private readonly exporter: PrometheusExporter;
  private readonly dashboard: DashboardFeed | undefined;

  constructor(engine: Service, opts: HttpServerOptions = {}) {
    this.ctx = new HttpContext(engine, {
      maxBodyBytes: opts.maxBodyBytes ?? engine.config.maxBodyBytes,
      maxJsonDepth: opts.maxJsonDepth ?? engine.config.maxJsonDepth,
      authorize: opts.authorize ?? allowAll,
      poolWaitUs: opts.poolWaitUs ?? engine.config.httpPoolWaitUs,
    });
    // /metrics shows the whole server: every I/O thread's metrics and these lines, merged.
    engine.setExtraLines(() => [...this.httpCounters(), ...engine.admission.metricLines()]);
    this.exporter = new PrometheusExporter(() => engine.wholeMetrics());
    this.app = uWS.App();
    attachStream(this.app, this.ctx, engine.config.streamMaxInFlight);
    this.dashboard = opts.dashboard;
    this.routes(opts.serverVersion ?? '0.0.0', opts.admin);
  }

  private routes(serverVersion: string, admin: AdminDeps | undefined): void {
    const c = this.ctx;
    const table: Array<[Method, string, Handler]> = [
      ['get', '/v2', v2.serverMetadata(c, serverVersion)],
      ['get', '/v2/health/live', v2.live(c)],
      ['get', '/v2/health/ready', v2.ready(c)],
      ['get', '/v2/models/:model', v2.modelMetadata(c, false)],
      ['get', '/v2/models/:model/versions/:version', v2.modelMetadata(c, true)],
      ['get', '/v2/models/:model/ready', v2.modelReady(c, false)],
      ['get', '/v2/models/:model/versions/:version/ready', v2.modelReady(c, true)],
      ['post', '/v2/models/:model/infer', inferRoute(c, false)],
      ['post', '/v2/models/:model/versions/:version/infer', inferRoute(c, true)],
      ['get', '/v2/models/:model/config', v2.modelConfig(c, false)],
      ['get', '/v2/models/:model/versions/:version/config', v2.modelConfig(c, true)],
      ['get', '/v2/models/:model/stats', v2.modelStats(c, false)],
      ['get', '/v2/models/:model/versions/:version/stats', v2.modelStats(c, true)],
      ['get', '/v2/repository/index', v2.repositoryIndex(c)],
      ['post', '/v2/repository/index', v2.repositoryIndex(c)],
      ['post', '/v2/repository/models/:model/load', v2.load(c)],
      ['post', '/v2/repository/models/:model/unload', v2.unload(c)],
      ['post', '/v1/models/:spec', predictRoute(c)],
      ['post', '/v1/feedback', feedbackRoute(c)],
      ['get', '/metrics', this.metricsRoute()],
      ...(admin ? adminRoutes(c, admin) : []),
      ...(this.dashboard ? dashboardRoutes(c, this.dashboard) : []),
    ];
    const methods = new Map<string, Method[]>();
    for (const [method, pattern, handler] of table) {
      this.app[method](pattern, this.framed(handler));
      methods.set(pattern, [...(methods.get(pattern) ?? []), method]);
    }
    // Known paths with another method: 405 with Allow; anything else: 404.
    for (const [pattern, allowed] of methods) {
      const allow = allowed.map((m) => (m === 'del' ? 'DELETE' : m.toUpperCase())).join(', ');
      this.app.any(pattern, this.framed((res) => {
        const x = c.begin(res, 'other');
        c.fail(x, new SluiceError('METHOD_NOT_ALLOWED', `allowed: ${allow}`), true);
      }));
    }
    this.app.any('/*', this.framed((res, req) => {
      const url = req.getUrl();
      const x = c.begin(res, 'other');
      c.fail(x, new SluiceError('ROUTE_NOT_FOUND', `no endpoint ${url.slice(0, 200)}`), true);
    }));
  }

  /**
   * Refuses a request whose length is ambiguous before its route sees it: 400 BAD_FRAMING, then
   * the connection closes. The answer is written after uWS has finished parsing what it has read,
   * never inside its parser: an answer written there does not stop uWS from parsing (and routing)
   * the bytes that follow as a new request, the smuggled one. The socket is paused meanwhile;
   * if a whole further request was already read, uWS closes the connection itself (a pipelined
   * request behind an unanswered one), without routing it.
   */
  private framed(handler: Handler): Handler {
    return (res, req) => {
      const bad = framingError(req);
      if (!bad) return handler(res, req);
      const x = this.ctx.begin(res, 'other');
      this.ctx.hold(x);
      setImmediate(() => this.ctx.fail(x, bad, true));
    };
  }

  private metricsRoute(): Handler {
    return (res) => {
      const x = this.ctx.begin(res, 'metrics');
      this.ctx.guard(x, async () => {
        const text = await this.exporter.text();
        if (!finish(x, 200)) return;
        res.cork(() => res.writeStatus('200 OK').writeHeader('Content-Type', this.exporter.contentType).end(text, x.closing()));
      });
    };
  }

  private httpCounters(): string[] {
    const out = ['# HELP sluice_http_requests_total HTTP requests answered, by route and status.', '# TYPE sluice_http_requests_total counter'];
    for (const [key, n] of this.ctx.counters) {
      const [route, status] = key.split(' ');
      out.push(`sluice_http_requests_total{route="${route}",status="${status}"} ${n}`);
    }
    return out;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) return reject(new SluiceError('CONFIG_INVALID', `cannot listen on ${host}:${port}`));
        this.listenSocket = socket;
        resolve(uWS.us_socket_local_port(socket as unknown as uWS.us_socket));
      });
    });
  }

  /** Readiness false (503) from now on; connections and requests are still taken and answered. */
  unready(): void {
    this.ctx.unready = true;
  }

  /**
   * Drains: readiness false at once, stop accepting connections, wait (up to `timeoutMs`)
   * for in-flight requests to be answered. From now on every answer closes its connection
   * (`Connection: close`), in-flight ones included, so keep-alive clients reconnect elsewhere
   * instead of sending more to a server about to exit. The engine is stopped by the caller
   * afterwards.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    this.ctx.unready = true;
    this.ctx.draining = true;
    // Dashboard streams never end by themselves: end them, or a drain would wait for them.
    this.dashboard?.close();
    if (this.listenSocket) {
      uWS.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
    }
    const until = Date.now() + timeoutMs;
    while (this.ctx.inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * After every thread's close(): closes the connections still open, idle keep-alive ones (and
   * any request that outlived the drain's timeout). Left open, they would hold this I/O thread,
   * and so the process's exit, until uWebSockets.js's idle timeout, ~10 s after their last
   * request (SIGTERM with idle connections open took 11.6 s to exit with the default 5 s grace,
   * 2026-12-03). Not in close() itself: a thread that has drained would cut a client's kept
   * connection while another thread still answers, and the drain answers on it until then (503
   * to readiness probes). (App.close() is in the uWebSockets.js pinned here, 20.30, though not
   * in its typings.)
   */
  closeConnections(): void {
    (this.app as unknown as { close(): void }).close();
  }
}

