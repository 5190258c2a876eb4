/**
 * A server's stop ends what reads the I/O threads' figures (the alert, experiment, deployment
 * and performance loops, the engine's drift collection) before it ends the threads. Before, a
 * round that began after the threads had ended (while the stop waited for a busy database)
 * got no value: drift collection logged "I/O thread 1 ended" (what this test caught on the old
 * order, 3 runs of 3), and an alert round took a missing value for its condition no longer
 * holding, resolving a firing alert and announcing it resolved (seen once beside a benchmark's
 * stop; this test checks that firing alerts stay firing).
 */
import { describe, expect, it, vi } from 'vitest';

// Warnings written (the logger reads its level once, at import; tests run silent otherwise).
vi.hoisted(() => {
  process.env.SLUICE_LOG_LEVEL = 'warn';
});
import { openDb } from '../../src/registry/open.js';
import { serve } from '../../src/serve.js';
import { tempDir } from '../helpers/services.js';
import { admin, until } from '../helpers/server.js';

describe('stopping a server', () => {
  it('leaves a firing alert firing, and reads no figure from an ended thread', async () => {
    const tmp = await tempDir('sluice-stop-');
    const adminKey = `sk_test_admin_${'s'.repeat(40)}`;
    try {
      // Every loop's rounds every 50 ms (the least allowed).
      const s = await serve({ dataDir: tmp.dir, httpPort: 0, grpcPort: 0, workers: 1, adminKey, ioThreads: 2, alertIntervalMs: 50, experimentIntervalMs: 50, deploymentIntervalMs: 50, performanceIntervalMs: 50 });
      const url = `http://127.0.0.1:${s.httpPort}`;
      for (let i = 0; i < 150; i++) {
        expect((await admin({ url }, adminKey, 'POST', '/v1/admin/alerts/rules', { name: `always-${i}`, source: 'error_rate', labels: { model: 'demo-logistic' }, operator: '>=', threshold: 0, for_ms: 0, severity: 'info' })).status).toBe(200);
      }
      const body = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 100], data: new Array(100).fill(0.1) }] });
      for (let i = 0; i < 20; i++) expect((await fetch(`${url}/v2/models/demo-logistic/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status).toBe(200);
      await until(async () => ((await admin({ url }, adminKey, 'GET', '/v1/admin/alerts?state=firing')).json as Array<{ rule: string }>).some((a) => a.rule === 'always-149'), 20_000);
      const lines: string[] = [];
      const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        lines.push(String(chunk));
        return true;
      });
      try {
        // The database busy for a while as the stop begins (as when it is writing a backlog of
        // decisions): a loop's round under way waits for it, and the stop waits for that round.
        const busy = s.registry.db.query('SELECT pg_sleep(2)');
        await s.stop();
        await busy.catch(() => undefined);
      } finally {
        spy.mockRestore();
      }
      expect(lines.filter((l) => l.includes('"level":"warn"') || l.includes('"level":"error"'))).toEqual([]);
      const db = await openDb({ dataDir: tmp.dir, databaseUrl: undefined });
      try {
        const rows = await db.query<{ state: string; n: number }>("SELECT state, count(*)::int AS n FROM alerts WHERE rule LIKE 'always-%' GROUP BY state");
        expect(rows).toEqual([{ state: 'firing', n: 150 }]);
      } finally {
        await db.close();
      }
    } finally {
      await tmp.cleanup();
    }
  }, 60_000);
});
