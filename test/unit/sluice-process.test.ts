/**
 * The launcher of the real server (loadtest/sluice-process.ts) that benchmarks, chaos scenarios
 * and process tests share: it fails instead of waiting forever when the "serving" line cannot
 * come (an A/B of the overload benchmark with SLUICE_LOG_LEVEL=warn hung for 13 minutes).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';

describe('startSluiceProcess', () => {
  it('refuses, before starting anything, a log level that hides the info-level "serving" line', async () => {
    await expect(startSluiceProcess({ env: { SLUICE_LOG_LEVEL: 'warn' } })).rejects.toThrow(/SLUICE_LOG_LEVEL=warn: the launcher waits for the "sluice: serving" line/);
  });

  it('kills a server that has not logged "serving" within the start timeout, and says so', async () => {
    // `node -e` runs its code and leaves the script path as an argument: a process that lives
    // and never logs, as a server stuck before serving would.
    const start = startSluiceProcess({ nodeFlags: ['-e', 'setInterval(() => {}, 1000)'], startTimeoutMs: 500 });
    await expect(start).rejects.toThrow(/did not log "serving" within 0.5 s/);
  });

  it('stop() resolves once the server has exited and its fresh data directory is gone', async () => {
    const s = await startSluiceProcess({ env: { SLUICE_MODELS: 'demo-logistic' } });
    expect((await fetch(`${s.http}/v2/health/ready`)).status).toBe(200);
    expect(existsSync(s.dataDir)).toBe(true);
    expect(await s.stop()).toBe(0);
    expect(s.child.exitCode).toBe(0);
    expect(existsSync(s.dataDir)).toBe(false);
  }, 60_000);
});
