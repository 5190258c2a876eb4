import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

// Issue #10 defects 13 and 14: a lock that lacks other platforms' optional packages is rewritten by
// every fresh `npm install` (and refused by `npm ci`); a project config key npm does not know is
// warned about on every npm command, `npm start` included.
describe('installation', () => {
  it('package-lock.json is complete: npm ci accepts it as it is', async () => {
    // --dry-run checks the lock against package.json without touching node_modules.
    const { stderr } = await run('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
      cwd: root,
    });
    expect(stderr).not.toMatch(/out of sync|Missing: /);
  });

  it('npm commands print no unknown-config warning, and the CUDA download stays denied', async () => {
    const { stderr } = await run('npm', ['pkg', 'get', 'name'], { cwd: root });
    expect(stderr).not.toMatch(/Unknown (project|user|builtin) config/);
    expect(existsSync(resolve(root, '.npmrc'))).toBe(false);
    const { stdout } = await run('npm', ['pkg', 'get', 'allowScripts'], { cwd: root });
    expect(JSON.parse(stdout)['onnxruntime-node']).toBe(false);
  });
});
