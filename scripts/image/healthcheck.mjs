// The container's HEALTHCHECK (Dockerfile): exits 0 when GET /v2/health/live answers 200 within
// 2.5 s, else 1. Liveness, not readiness: a draining server is alive, and restarting it would cut
// the drain short. Reads the port and address the server itself reads (SLUICE_HTTP_*); a
// wildcard listen address is reached on loopback. Node's own fetch: the slim image has no curl.
const port = process.env.SLUICE_HTTP_PORT || '8000';
const listen = process.env.SLUICE_HTTP_HOST || '127.0.0.1';
const host = listen === '0.0.0.0' || listen === '::' ? '127.0.0.1' : listen.includes(':') ? `[${listen}]` : listen;

try {
  const res = await fetch(`http://${host}:${port}/v2/health/live`, { signal: AbortSignal.timeout(2_500) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
