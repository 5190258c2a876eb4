/** Runs the built `sluice` command (dist/src/cli/index.js) as a child process, as a user would. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/paths.js';

const CLI = path.join(projectRoot, 'dist/src/cli/index.js');

/**
 * Its exit code and output; SLUICE_API_KEY is cleared so that a test's --key is the only key.
 * `input` is written to its stdin (closed at once otherwise).
 */
export function sluice(args: string[], env: Record<string, string> = {}, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { ...process.env, SLUICE_LOG_LEVEL: 'silent', SLUICE_API_KEY: '', ...env } }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}
