/**
 * `sluice policies evaluate <model>`: off-policy evaluation of a candidate policy on the model's
 * logged bandit decisions and their feedback, through the admin API's
 * `POST /v1/admin/models/{m}/evaluate` (--url, --key or SLUICE_API_KEY, as `sluice route`).
 * Prints the IPS, SNIPS and doubly-robust estimates with their intervals as a small table;
 * `--json` prints the server's answer as it is. The estimators are src/learn/ope.ts.
 */
import type { Command } from 'commander';
import { SluiceError } from '../errors.js';
import { checkName, isValidName } from '../names.js';
import { alignedLines } from './table.js';
import { adminOptions, adminTarget, request } from './admin-client.js';

/** The candidate policy as the endpoint takes it. */
export type PolicySpec = 'uniform' | { arm: number } | { version: string };

/** `uniform`, `arm:<k>` (a fixed arm, 0-based) or `version:<v>` (another version of the model). */
export function parsePolicyOption(s: string): PolicySpec {
  if (s === 'uniform') return 'uniform';
  const arm = /^arm:(\d+)$/.exec(s);
  if (arm && Number.isSafeInteger(Number(arm[1]))) return { arm: Number(arm[1]) };
  const version = /^version:(.+)$/.exec(s);
  if (version && isValidName(version[1])) return { version: version[1] };
  throw new SluiceError('INVALID_ARGUMENT', `--policy ${JSON.stringify(s)}: write uniform, arm:<k> (e.g. arm:2) or version:<v> (e.g. version:1.1.0)`);
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A time as ms since the epoch: a duration back from `now` (`90m`, `24h`, `7d`), a date or
 * time in ISO 8601 (`2026-01-31`, `2026-01-31T12:00:00Z`), or ms since the epoch.
 */
export function parseTimeOption(s: string, flag: string, now: number): number {
  const ago = /^(\d+(?:\.\d+)?)([smhd])$/.exec(s);
  if (ago) return now - Number(ago[1]) * UNITS[ago[2]!]!;
  if (/^\d+$/.test(s)) return Number(s);
  const t = /^\d{4}-\d{2}-\d{2}/.test(s) ? Date.parse(s) : NaN;
  if (Number.isFinite(t)) return t;
  throw new SluiceError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(s)}: write a duration back from now (24h, 7d), an ISO 8601 time or ms since the epoch`);
}

export interface EvaluateOptions {
  version?: string;
  policy?: string;
  since?: string;
  until?: string;
  level?: string;
}

/** The request body: {policy, version?, since?, until?, level?}; times as ms since the epoch. */
export function evaluateBody(o: EvaluateOptions, now: number): Record<string, unknown> {
  const body: Record<string, unknown> = { policy: parsePolicyOption(o.policy ?? 'uniform') };
  if (o.version !== undefined) body.version = checkName(o.version, '--version');
  if (o.since !== undefined) body.since = parseTimeOption(o.since, '--since', now);
  if (o.until !== undefined) body.until = parseTimeOption(o.until, '--until', now);
  if (body.since !== undefined && body.until !== undefined && (body.since as number) >= (body.until as number)) {
    throw new SluiceError('INVALID_ARGUMENT', '--since must be before --until');
  }
  if (o.level !== undefined) {
    const level = Number(o.level);
    if (!(level > 0 && level < 1)) throw new SluiceError('INVALID_ARGUMENT', `--level ${JSON.stringify(o.level)}: a number between 0 and 1, e.g. 0.95`);
    body.level = level;
  }
  return body;
}

interface EstimateJson {
  value: number | null;
  std_error: number | null;
  ci: [number, number] | null;
}

/** The endpoint's answer (src/learn/ope.ts OpeReport), as far as the table reads it. */
export interface OpeReportJson {
  n: number;
  policy: string;
  level: number;
  ips: EstimateJson;
  snips: EstimateJson;
  dr: EstimateJson;
  effective_sample_size: number;
  max_weight: number;
  logged_value: number;
}

/** Four significant digits; '-' where the estimate is undefined. */
function figure(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : String(Number(x.toPrecision(4)));
}

/** The report as lines: a heading, a table of the three estimators, then the weights. */
export function evaluationTable(model: string, version: string | undefined, r: OpeReportJson): string[] {
  const head = ['estimator', 'value', 'std error', `${Number((r.level * 100).toPrecision(6))}% interval`];
  const row = (name: string, e: EstimateJson) => [name, figure(e.value), figure(e.std_error), e.ci ? `[${figure(e.ci[0])}, ${figure(e.ci[1])}]` : '-'];
  return [
    `${model}${version !== undefined ? ` version ${version}` : ''}: policy ${r.policy} on ${r.n.toLocaleString('en-US')} logged decisions`,
    ...alignedLines([head, row('IPS', r.ips), row('SNIPS', r.snips), row('DR', r.dr)]),
    `logged policy's mean reward ${figure(r.logged_value)}; effective sample size ${figure(r.effective_sample_size)} of ${r.n.toLocaleString('en-US')}; largest weight ${figure(r.max_weight)}`,
  ];
}

export function addPolicyCommands(program: Command): void {
  const policies = program.command('policies').description('bandit policies: off-policy evaluation on logged decisions (admin API)');

  adminOptions(policies.command('evaluate <model>')
    .description('estimate what a candidate policy would have earned on the model\'s logged decisions (IPS, SNIPS, doubly robust)')
    .option('--version <v>', 'only the decisions this version made')
    .option('--policy <policy>', 'uniform (default), arm:<k> (a fixed arm, 0-based) or version:<v> (another version\'s policy)')
    .option('--since <time>', 'decisions from this time: 24h, 7d (back from now), an ISO 8601 time or ms since the epoch')
    .option('--until <time>', 'decisions before this time (same forms)')
    .option('--level <p>', 'confidence level of the intervals (default 0.95)')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (m: string, o: EvaluateOptions & { url: string; key?: string; json?: boolean }) => {
      checkName(m, 'model name');
      const body = evaluateBody(o, Date.now());
      const r = (await request(adminTarget(o), 'POST', `/v1/admin/models/${encodeURIComponent(m)}/evaluate`, {
        chunks: [Buffer.from(JSON.stringify(body))],
        headers: { 'content-type': 'application/json' },
      })) as OpeReportJson;
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else for (const l of evaluationTable(m, o.version, r)) console.log(l);
    });
}
