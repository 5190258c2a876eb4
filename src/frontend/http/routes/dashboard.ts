/**
 * The dashboard over HTTP (issue #16):
 *   GET /dashboard                  the page (static: no data in it, so no key needed to load it)
 *   GET /dashboard/assets/{file}    its script, style sheet and the uPlot library (no CDN)
 *   GET /dashboard/events           the data, as server-sent events, with the admin key
 *
 * Auth: a browser cannot set an Authorization header on a page load or on an EventSource, and a
 * key in a URL would land in access logs and browser history. So the page asks for the key once
 * (kept in the tab's sessionStorage) and reads the stream with fetch(), which sends it in the
 * Authorization header, parsing `text/event-stream` itself. The stream is checked like any admin
 * route (401 without a key, 403 with one lacking the admin scope).
 *
 * The stream: `data: <snapshot JSON>` at once and every interval, `event: problem` when the
 * snapshot could not be built, and a comment as heartbeat. A slow client is not buffered for:
 * while uWebSockets.js still holds an earlier write for it, new snapshots are dropped for that
 * client (the next one after it drains is whole and current). Viewers are capped server-wide
 * (DASHBOARD_FULL); a client leaving frees its slot at once (uWS onAborted).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { SluiceError } from '../../../errors.js';
import { projectRoot } from '../../../paths.js';
import type { DashboardFeed, Viewer } from '../../../service/dashboard-feed.js';
import type { HttpContext } from '../context.js';
import { finish, sendError } from '../reply.js';

type Handler = (res: HttpResponse, req: HttpRequest) => void;

/** The page's own files, served as they are (no build step). */
export const PAGE_DIR = path.join(projectRoot, 'src', 'dashboard-page');

/** The page may load scripts, styles and data from this server only, and run no inline script. */
export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  type: string;
  body: Buffer;
}

/** Every file the page needs, read once at start (a missing one fails the start, not a viewer). */
function loadAssets(): { page: Asset; assets: Map<string, Asset> } {
  const uplot = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
  const read = (file: string, type: string): Asset => ({ type, body: readFileSync(file) });
  return {
    page: read(path.join(PAGE_DIR, 'index.html'), 'text/html; charset=utf-8'),
    assets: new Map([
      ['app.js', read(path.join(PAGE_DIR, 'app.js'), 'text/javascript; charset=utf-8')],
      ['style.css', read(path.join(PAGE_DIR, 'style.css'), 'text/css; charset=utf-8')],
      ['uplot.js', read(path.join(uplot, 'uPlot.iife.min.js'), 'text/javascript; charset=utf-8')],
      ['uplot.css', read(path.join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8')],
    ]),
  };
}

function sendAsset(ctx: HttpContext, res: HttpResponse, a: Asset): void {
  const x = ctx.begin(res, 'dashboard');
  if (!finish(x, 200)) return;
  res.cork(() => {
    res.writeHeader('Content-Type', a.type)
      .writeHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY)
      .writeHeader('X-Content-Type-Options', 'nosniff')
      .writeHeader('Cache-Control', 'no-cache')
      .end(a.body, x.closing());
  });
}

/** One connected page: its response stays open, written to by the feed. */
export class SseViewer implements Viewer {
  private open = true;
  /** uWS holds part of an earlier write: drop snapshots until it drains. */
  private blocked = false;
  /** Snapshots dropped for this client (its connection was too slow). */
  dropped = 0;
  leave: () => void = () => undefined;

  constructor(private readonly res: Pick<HttpResponse, 'cork' | 'write' | 'end' | 'onWritable'>) {}

  snapshot(json: string): void {
    if (this.blocked) {
      this.dropped++;
      return;
    }
    this.write(`data: ${json}\n\n`);
  }

  problem(code: string, message: string): void {
    if (!this.blocked) this.write(`event: problem\ndata: ${JSON.stringify({ code, message })}\n\n`);
  }

  heartbeat(): void {
    if (!this.blocked) this.write(': heartbeat\n\n');
  }

  end(): void {
    if (!this.open) return;
    this.open = false;
    this.leave();
    // The connection closes with it: a keep-alive socket left open would hold a draining I/O
    // thread until the client let it go.
    this.res.cork(() => this.res.end(undefined, true));
  }

  /** The client went away (uWS onAborted): the response must not be touched again. */
  aborted(): void {
    if (!this.open) return;
    this.open = false;
    this.leave();
  }

  private write(text: string): void {
    if (!this.open) return;
    let ok = true;
    this.res.cork(() => {
      ok = this.res.write(text);
    });
    if (!ok) {
      // Written in full to uWS's buffer, not yet to the socket: wait for it to drain.
      this.blocked = true;
      this.res.onWritable(() => {
        this.blocked = false;
        return true;
      });
    }
  }
}

function eventsRoute(ctx: HttpContext, feed: DashboardFeed): Handler {
  return (res, req) => {
    const authorization = req.getHeader('authorization');
    const x = ctx.begin(res, 'dashboard');
    const gate = ctx.authorizeFirst(x, 'admin', authorization);
    if (gate === false) return;
    ctx.guard(x, async () => {
      await gate;
      if (ctx.draining) throw new SluiceError('SHUTTING_DOWN', 'the server is stopping');
      if (!feed.slots.take()) throw new SluiceError('DASHBOARD_FULL', `the dashboard has ${feed.slots.max} viewers already`);
      // The exchange is answered (counted, no longer in flight: a drain does not wait for a
      // stream); the stream lives on with the feed, which ends it when the server stops.
      if (!finish(x, 200)) {
        feed.slots.give();
        return;
      }
      const v = new SseViewer(res);
      res.onAborted(() => v.aborted());
      res.cork(() => {
        res.writeStatus('200 OK')
          .writeHeader('Content-Type', 'text/event-stream; charset=utf-8')
          .writeHeader('Cache-Control', 'no-store')
          .writeHeader('X-Accel-Buffering', 'no')
          .write(`retry: 2000\n\n`);
      });
      try {
        v.leave = feed.join(v);
      } catch (e) {
        feed.slots.give();
        v.end();
        throw e;
      }
    });
  };
}

/** The dashboard's routes; `feed` is this I/O thread's. */
export function dashboardRoutes(ctx: HttpContext, feed: DashboardFeed): Array<['get', string, Handler]> {
  const { page, assets } = loadAssets();
  return [
    ['get', '/dashboard', (res) => sendAsset(ctx, res, page)],
    ['get', '/dashboard/events', eventsRoute(ctx, feed)],
    ['get', '/dashboard/assets/:file', (res, req) => {
      const a = assets.get(req.getParameter(0) ?? '');
      if (a) return sendAsset(ctx, res, a);
      const x = ctx.begin(res, 'dashboard');
      sendError(x, new SluiceError('ROUTE_NOT_FOUND', 'no such dashboard asset'));
    }],
  ];
}
