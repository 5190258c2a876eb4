/**
 * NVIDIA's own Python client (tritonclient, HTTP and gRPC) against a whole Sluice server:
 * inference (JSON, binary, raw), NaN refused, unknown model NOT_FOUND, statistics as
 * perf_analyzer checks them (test/compat/tritonclient_check.py). tritonclient is not a project
 * dependency: scripts/ci/services.sh installs it beside moto (SLUICE_TEST_PYTHON), or set
 * SLUICE_TEST_TRITONCLIENT_PYTHON to a Python that has `tritonclient[http,grpc]`. Without one
 * this test is skipped, unless SLUICE_REQUIRE_SERVICES=1 (CI), where it fails.
 */
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';
import { startFull } from '../helpers/server.js';
import { requireServices } from '../helpers/services.js';

const python = process.env.SLUICE_TEST_TRITONCLIENT_PYTHON ?? process.env.SLUICE_TEST_PYTHON ?? 'python3';
const hasTritonclient = spawnSync(python, ['-c', 'import tritonclient.http, tritonclient.grpc'], { stdio: 'ignore' }).status === 0;

describe('tritonclient (Python) against Sluice', () => {
  it.skipIf(!hasTritonclient && !requireServices)('passes every check of test/compat/tritonclient_check.py (skipped without a Python that has tritonclient: SLUICE_TEST_PYTHON; CI installs it)', async () => {
    const s = await startFull();
    try {
      const script = path.join(projectRoot, 'test', 'compat', 'tritonclient_check.py');
      const { stdout } = await promisify(execFile)(python, [script, `127.0.0.1:${s.httpPort}`, `127.0.0.1:${s.grpcPort}`, 'demo-logistic'], { timeout: 60_000 })
        .catch((e: { stdout?: string; message: string }) => ({ stdout: `${e.stdout ?? ''}\n${e.message}` }));
      expect(stdout).toContain('all checks passed');
    } finally {
      await s.close();
    }
  }, 180_000);
});
