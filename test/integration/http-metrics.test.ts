import { execFileSync, spawnSync } from 'node:child_process';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoBody, postJson, startServer, type TestServer } from '../helpers/http.js';
import { requireServices } from '../helpers/services.js';

/** Python with prometheus_client: the reference parser (strict; raises on invalid text). */
const python = process.env.SLUICE_TEST_PYTHON ?? 'python3';
const hasReferenceParser = spawnSync(python, ['-c', 'import prometheus_client'], { stdio: 'ignore' }).status === 0;

interface Family {
  name: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string> }>;
}

describe('/metrics', () => {
  let s: TestServer;

  beforeAll(async () => {
    s = await startServer({ workers: 1 });
  });
  afterAll(() => s.close());

  const scrape = async () => (await fetch(`${s.url}/metrics`)).text();
  const value = (fams: Family[], name: string, labels: Record<string, string>) =>
    Number(fams.find((f) => f.name === name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0);

  it('counts exactly the requests sent, by outcome, error code and HTTP status', async () => {
    const before = parsePrometheus(await scrape()) as Family[];
    const okBefore = value(before, 'sluice_inference_requests_total', { model: 'demo-logistic', outcome: 'success' });
    const good = 37;
    const malformed = 5;
    const unknown = 3;
    for (let i = 0; i < good; i++) expect((await postJson(`${s.url}/v2/models/demo-logistic/infer`, demoBody())).status).toBe(200);
    for (let i = 0; i < malformed; i++) expect((await postJson(`${s.url}/v2/models/demo-logistic/infer`, '{oops')).status).toBe(400);
    for (let i = 0; i < unknown; i++) expect((await postJson(`${s.url}/v2/models/nope/infer`, demoBody())).status).toBe(404);
    const text = await scrape();
    const after = parsePrometheus(text) as Family[];
    expect(value(after, 'sluice_inference_requests_total', { model: 'demo-logistic', outcome: 'success' }) - okBefore).toBe(good);
    expect(value(after, 'sluice_errors_total', { code: 'MALFORMED_REQUEST' }) - value(before, 'sluice_errors_total', { code: 'MALFORMED_REQUEST' })).toBe(malformed);
    expect(value(after, 'sluice_errors_total', { code: 'MODEL_NOT_FOUND' }) - value(before, 'sluice_errors_total', { code: 'MODEL_NOT_FOUND' })).toBe(unknown);
    expect(value(after, 'sluice_http_requests_total', { route: 'infer', status: '200' }) - value(before, 'sluice_http_requests_total', { route: 'infer', status: '200' })).toBe(good);
    expect(value(after, 'sluice_http_requests_total', { route: 'infer', status: '400' }) - value(before, 'sluice_http_requests_total', { route: 'infer', status: '400' })).toBe(malformed);
    expect(after.find((f) => f.name === 'sluice_request_duration_seconds')?.type).toBe('SUMMARY');
    // (That parser drops labelled summary samples, so read the summary lines directly.)
    const sample = (suffix: string, extra = '') =>
      Number(new RegExp(`^sluice_request_duration_seconds${suffix}\\{model="demo-logistic",version="1"${extra}\\} (\\S+)$`, 'm').exec(text)?.[1]);
    for (const q of ['0.5', '0.9', '0.99', '0.999']) expect(sample('', `,quantile="${q}"`)).toBeGreaterThan(0);
    expect(sample('_count')).toBeGreaterThanOrEqual(good);
    expect(sample('', ',quantile="0.999"')).toBeGreaterThanOrEqual(sample('', ',quantile="0.5"'));
  });

  it.skipIf(!hasReferenceParser && !requireServices)(
    'parses with the reference Prometheus parser (python prometheus_client; skipped when it is not installed)',
    async () => {
      const text = await scrape();
      const out = execFileSync(python, ['-c', [
        'import sys',
        'from prometheus_client.parser import text_string_to_metric_families',
        'fams = list(text_string_to_metric_families(sys.stdin.read()))',
        'print(len(fams), sum(len(f.samples) for f in fams))',
      ].join('\n')], { input: text }).toString().trim();
      const [families, samples] = out.split(' ').map(Number);
      expect(families).toBeGreaterThan(10);
      expect(samples).toBeGreaterThan(50);
    },
  );
});
