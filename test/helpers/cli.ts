/** Runs the built `sluice` command (dist/src/cli/index.js) as a child process, as a user would. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/paths.js';

const run = promisify(execFile);
const CLI = path.join(projectRoot, 'dist/src/cli/index.js');

/** Its exit code and output; SLUICE_API_KEY is cleared so that a test's --key is the only key. */
export async function sluice(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { ...process.env, SLUICE_LOG_LEVEL: 'silent', SLUICE_API_KEY: '', ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}
