/**
 * A new embedded database reaches the disk whole before it is handed over: PGlite's initdb
 * writes its files without syncing any (src/registry/pglite-settings.ts, Durability), so
 * src/registry/pglite-init-process.ts syncs every file and directory of the new data directory
 * after closing it. The child runs as PgliteDb.open runs it (the built script, its own process),
 * with fs.fsyncSync wrapped by a preload that lists what was synced (test/fixtures/record-fsync.cjs).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/paths.js';

const root = mkdtempSync(path.join(tmpdir(), 'sluice-init-sync-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function entries(at: string, out: string[] = []): string[] {
  for (const e of readdirSync(at, { withFileTypes: true })) {
    const p = path.join(at, e.name);
    if (e.isDirectory()) entries(p, out);
    else out.push(p);
  }
  out.push(at);
  return out;
}

describe('creating an embedded database', () => {
  it('syncs every file and directory initdb wrote before the child exits', async () => {
    const dir = path.join(realpathSync(root), 'db');
    const record = path.join(root, 'synced.txt');
    const child = spawn(process.execPath, ['--require', path.join(projectRoot, 'test/fixtures/record-fsync.cjs'), path.join(projectRoot, 'dist/src/registry/pglite-init-process.js'), dir], {
      stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RECORD_FSYNC_TO: record },
    });
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += String(b)));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    const synced = new Set(readFileSync(record, 'utf8').split('\n'));
    const all = entries(dir);
    expect(all).toContain(path.join(dir, 'PG_VERSION'));
    expect(all.length).toBeGreaterThan(500); // a whole PostgreSQL data directory, not a stub
    expect(all.filter((p) => !synced.has(p))).toEqual([]);
  }, 120_000);
});
