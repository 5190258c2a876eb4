/**
 * The cluster's watchdog: a process of its own, started by startCluster, that stops what the
 * cluster started if the launcher dies without stopping it (SIGKILL, the OOM killer, a crash).
 * The replicas and HAProxy run in process groups of their own (so that a Ctrl-C reaches the
 * launcher, which stops them in order), and PostgreSQL and moto are daemons: none of them
 * would notice the launcher's death, and they kept their ports, processes and files for good.
 *
 * `node watchdog.js <cluster dir> <pids file>`, in a process group of its own (a signal to the
 * launcher's group, a closed terminal, does not end it), its stdin a pipe from the launcher:
 * the pipe closes when the launcher's process ends, however it ends. Then it kills the process
 * groups listed in the pids file (one pid per line, written as each starts), stops PostgreSQL
 * and moto with the scripts that started them, and removes the directory. A launcher that stops the cluster itself
 * ends the watchdog first (SIGTERM), and nothing is done twice.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../paths.js';

function killGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
      return;
    } catch {
      // No such group (or process): it has already exited.
    }
  }
}

function cleanUp(dir: string, pidsFile: string): void {
  if (!existsSync(dir)) return;
  const pids = existsSync(pidsFile) ? readFileSync(pidsFile, 'utf8').split('\n').map(Number).filter((n) => Number.isInteger(n) && n > 1) : [];
  for (const pid of pids) killGroup(pid);
  for (const [script, sub] of [['postgres.sh', 'pg'], ['s3.sh', 's3']] as const) {
    const serviceDir = path.join(dir, 'services', sub);
    if (!existsSync(serviceDir)) continue;
    try {
      execFileSync('bash', [path.join(projectRoot, 'scripts', 'ci', script), 'stop', serviceDir], { stdio: 'ignore', timeout: 60_000 });
    } catch {
      // Stopped already, or cannot be: the directory goes anyway.
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

const [dir, pidsFile] = process.argv.slice(2);
if (!dir || !pidsFile) {
  process.stderr.write('usage: watchdog.js <cluster dir> <pids file>\n');
  process.exit(2);
}
// The launcher stops the cluster itself: nothing to do.
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('data', () => undefined);
process.stdin.on('error', () => undefined);
process.stdin.on('close', () => {
  cleanUp(dir, pidsFile);
  process.exit(0);
});
