/** Runs scenarios one at a time, each with a fresh context that is cleaned up whatever happens. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ChaosContext } from './context.js';
import { check, type Check, type Need, type Scenario } from './scenario.js';

export interface ScenarioReport {
  name: string;
  pass: boolean;
  checks: Check[];
  figures: Record<string, string | number>;
  seconds: number;
}

/** A scenario that has not finished after this long fails (and is cleaned up). */
export const SCENARIO_TIMEOUT_MS = 240_000;

function missing(need: Need): string | undefined {
  switch (need) {
    case 'postgres': {
      const bin = process.env.SLUICE_PG_BIN ?? '/usr/lib/postgresql/15/bin';
      return existsSync(path.join(bin, 'pg_ctl')) ? undefined : `PostgreSQL binaries not in ${bin} (set SLUICE_PG_BIN)`;
    }
    case 's3':
      return undefined; // scripts/ci/s3.sh installs moto (python3 -m venv) and says why when it cannot
    case 'root':
      return process.getuid?.() === 0 ? undefined : 'must run as root (it mounts a filesystem)';
  }
}

export async function runScenario(s: Scenario, log?: (m: string) => void): Promise<ScenarioReport> {
  const t0 = Date.now();
  const ctx = new ChaosContext(log);
  let checks: Check[] = [];
  let figures: Record<string, string | number> = {};
  const absent = s.needs.map((n) => [n, missing(n)] as const).filter(([, why]) => why !== undefined);
  if (absent.length > 0) {
    // Not skipped: `npm run chaos -- all` is meant to pass where it runs, so a missing part fails.
    checks = absent.map(([n, why]) => check(`needs ${n}`, false, why));
  } else {
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        s.run(ctx),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`did not finish within ${SCENARIO_TIMEOUT_MS / 1000} s`)), SCENARIO_TIMEOUT_MS);
        }),
      ]);
      checks = result.checks;
      figures = result.figures;
    } catch (e) {
      checks = [check('scenario ran to the end', false, (e as Error).stack ?? String(e))];
    } finally {
      clearTimeout(timer);
      await ctx.cleanup();
    }
  }
  const pass = checks.length > 0 && checks.every((c) => c.pass);
  return { name: s.name, pass, checks, figures, seconds: (Date.now() - t0) / 1000 };
}

export function formatReport(r: ScenarioReport): string {
  const lines = r.checks.map((c) => `  ${c.pass ? 'PASS' : 'FAIL'}  ${c.name}${c.detail ? `\n        ${c.detail.split('\n').join('\n        ')}` : ''}`);
  const figs = Object.entries(r.figures).map(([k, v]) => `    ${k}: ${v}`);
  return [...lines, ...(figs.length ? ['  figures:', ...figs] : []), `${r.name}: ${r.pass ? 'PASS' : 'FAIL'} (${r.seconds.toFixed(1)} s)`].join('\n');
}
