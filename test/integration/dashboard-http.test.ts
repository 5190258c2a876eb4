/**
 * The dashboard's HTTP routes on a whole server (PGlite, two I/O threads): the page and its
 * assets (static, with a Content-Security-Policy, no key needed), the event stream behind the
 * admin key (401 / 403), its framing (text/event-stream, a first snapshot at once, then one per
 * interval), the server-wide cap on viewers (DASHBOARD_FULL) and a client leaving freeing its
 * slot, and a drain ending the streams instead of waiting for them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoBody } from '../helpers/http.js';
import { admin, startFull, until, type FullServer } from '../helpers/server.js';
import { openSse, type SseStream } from '../helpers/sse.js';

const MAX_VIEWERS = 3;

describe('dashboard over HTTP', () => {
  let s: FullServer;
  let closed = false;
  let auth: Record<string, string>;
  const open: SseStream[] = [];
  const watch = async (headers = auth) => {
    const sse = await openSse(`${s.url}/dashboard/events`, headers);
    open.push(sse);
    return sse;
  };

  beforeAll(async () => {
    s = await startFull({ ioThreads: 2, admission: false, dashboardIntervalMs: 200, dashboardMaxViewers: MAX_VIEWERS, drainTimeoutMs: 60_000 });
    auth = { authorization: `Bearer ${s.adminKey}` };
  }, 60_000);
  afterAll(async () => {
    for (const sse of open) sse.close();
    if (!closed) await s?.close();
  });

  it('serves the page and its assets without a key, with a CSP that allows no inline script', async () => {
    const page = await fetch(`${s.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await page.text();
    // Every script has a src on this server (no inline code, no CDN).
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="\/dashboard\/assets\//);
      expect(body!.trim()).toBe('');
    }
    for (const [file, type] of [['app.js', /javascript/], ['uplot.js', /javascript/], ['uplot.css', /css/], ['style.css', /css/]] as const) {
      const r = await fetch(`${s.url}/dashboard/assets/${file}`);
      expect(r.status, file).toBe(200);
      expect(r.headers.get('content-type'), file).toMatch(type);
      expect((await r.arrayBuffer()).byteLength, file).toBeGreaterThan(100);
    }
    expect(await admin(s, undefined, 'GET', '/dashboard/assets/..%2Fapp.js')).toMatchObject({ status: 404, json: { code: 'ROUTE_NOT_FOUND' } });
    expect(await admin(s, undefined, 'GET', '/dashboard/assets/secrets.json')).toMatchObject({ status: 404, json: { code: 'ROUTE_NOT_FOUND' } });
  });

  it('refuses the stream without the admin key: 401 without one, 403 with another scope', async () => {
    expect(await admin(s, undefined, 'GET', '/dashboard/events')).toMatchObject({ status: 401, json: { code: 'UNAUTHENTICATED' } });
    expect(await admin(s, 'sk_not_a_key', 'GET', '/dashboard/events')).toMatchObject({ status: 401, json: { code: 'UNAUTHENTICATED' } });
    const created = await admin(s, s.adminKey, 'POST', '/v1/admin/keys', { name: 'predictor', scopes: ['predict'] });
    expect(created.status).toBe(200);
    expect(await admin(s, created.json.secret as string, 'GET', '/dashboard/events')).toMatchObject({ status: 403, json: { code: 'PERMISSION_DENIED' } });
  });

  it('streams a snapshot at once, then one per interval, as text/event-stream', async () => {
    // Some traffic, so the window has figures.
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${s.url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(demoBody(1, 0.1)) });
      expect(r.status).toBe(200);
    }
    const sse = await watch();
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(sse.headers.get('cache-control')).toBe('no-store');
    const first = JSON.parse((await sse.next()).data);
    const second = JSON.parse((await sse.next()).data);
    expect(second.at).toBeGreaterThan(first.at);
    expect(sse.events[0]).toEqual({ type: 'retry', data: '2000' });
    expect(first.problems).toEqual([]);
    expect(first.interval_ms).toBe(200);
    const logistic = second.models.find((m: { model: string }) => m.model === 'demo-logistic');
    expect(logistic).toMatchObject({ default_version: '1', route: { model: 'demo-logistic', route: null }, shares: [{ variant: 'default', version: '1', share: 1 }] });
    const v1 = logistic.versions.find((v: { version: string }) => v.version === '1');
    expect(v1.window.requests).toBe(20);
    expect(v1.now.rate).toBeGreaterThan(0);
    expect(v1.now.p99).toBeGreaterThan(0);
    // One point per snapshot built, columns of equal length.
    expect(v1.series.t.length).toBeGreaterThanOrEqual(2);
    for (const k of ['rate', 'error_rate', 'p50', 'p95', 'p99']) expect(v1.series[k]).toHaveLength(v1.series.t.length);
    expect(second.deployments).toEqual([]);
    expect(second.experiments).toEqual([]);
    expect(second.alerts).toMatchObject({ firing: expect.any(Array), recent: expect.any(Array) });
    // demo-bandit's arms: share of its feedback and cumulative reward.
    const bandit = second.models.find((m: { model: string }) => m.model === 'demo-bandit');
    expect(bandit.versions[0].bandit.arms).toHaveLength(5);
    sse.close();
  });

  it('caps viewers on the whole server (every I/O thread) and frees a slot when a client leaves', async () => {
    // Let the previous test's slot go.
    await until(async () => {
      const probe = await watch();
      probe.close();
      return probe.status === 200;
    });
    const viewers: SseStream[] = [];
    await until(async () => {
      // Slots of probes just closed come back as their aborts arrive.
      for (const v of viewers) v.close();
      viewers.length = 0;
      for (let i = 0; i < MAX_VIEWERS; i++) viewers.push(await watch());
      return viewers.every((v) => v.status === 200);
    });
    for (const v of viewers) await v.next();
    // Several more tries, likely on both I/O threads: all refused.
    for (let i = 0; i < 4; i++) {
      const r = await admin(s, s.adminKey, 'GET', '/dashboard/events');
      expect(r).toMatchObject({ status: 503, json: { code: 'DASHBOARD_FULL' } });
    }
    viewers[0]!.close();
    await until(async () => {
      const again = await watch();
      if (again.status !== 200) return false;
      viewers[0] = again;
      return true;
    });
    await viewers[0]!.next();
    for (const v of viewers) v.close();
  });

  it('a drain ends the streams instead of waiting for them', async () => {
    await until(async () => {
      const probe = await watch();
      if (probe.status === 200) return true;
      probe.close();
      return false;
    });
    const sse = open[open.length - 1]!;
    await sse.next();
    // drainTimeoutMs is a minute: stopping returns long before, and the stream has ended.
    closed = true;
    await s.close();
    await sse.ended;
  }, 30_000);
});
