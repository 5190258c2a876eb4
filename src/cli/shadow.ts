/**
 * `sluice shadow report <model>`: what a model's shadow versions did, from the admin API's
 * `GET /v1/admin/models/{m}/shadow` (--url, --key or SLUICE_API_KEY, as `sluice route`): one
 * row per shadow version with its requests mirrored and dropped, errors, answers compared and
 * agreeing with the caller's, output differences, and its latency beside the caller's on the
 * same requests. `--json` prints the server's answer as it is.
 */
import type { Command } from 'commander';
import { checkName } from '../names.js';
import { alignedLines } from './table.js';
import { adminOptions, adminTarget, request } from './admin-client.js';

/** The admin API's answer (src/routing/shadow.ts shadowReport), as far as the table reads it. */
export interface ShadowReportJson {
  model: string;
  route_generation: number;
  shadows: Array<{
    version: string;
    mirrored?: number;
    dropped?: number;
    errors?: number;
    compared?: number;
    agreeing?: number;
    tolerance?: number;
    mean_abs_diff?: number | null;
    max_abs_diff?: number | 'Infinity' | null;
    latency_ms?: { shadow?: { p50: number | null; p99: number | null }; caller?: { p50: number | null; p99: number | null } };
  }>;
}

const COLUMNS = ['version', 'mirrored', 'dropped', 'errors', 'compared', 'agreeing', 'mean |diff|', 'max |diff|',
  'shadow p50 ms', 'shadow p99 ms', 'caller p50 ms', 'caller p99 ms'];

function count(n: number | undefined): string {
  return n === undefined ? '-' : n.toLocaleString('en-US');
}

/** Three significant digits: 0.0412, 50.3, 1.2e-7; '-' when there is nothing to show. */
function figure(x: number | 'Infinity' | null | undefined): string {
  if (x === null || x === undefined) return '-';
  if (x === 'Infinity' || x === Infinity) return 'inf';
  return String(Number(x.toPrecision(3)));
}

/** The report as lines: a heading, then a table (version left, figures right-aligned). */
export function shadowTable(r: ShadowReportJson): string[] {
  const route = r.route_generation > 0 ? `route generation ${r.route_generation}` : 'no route in force';
  if (r.shadows.length === 0) return [`${r.model}: no shadow traffic recorded (${route})`];
  const tolerance = r.shadows[0]?.tolerance;
  const rows = r.shadows.map((s) => [
    s.version, count(s.mirrored), count(s.dropped), count(s.errors), count(s.compared), count(s.agreeing),
    figure(s.mean_abs_diff), figure(s.max_abs_diff),
    figure(s.latency_ms?.shadow?.p50), figure(s.latency_ms?.shadow?.p99), figure(s.latency_ms?.caller?.p50), figure(s.latency_ms?.caller?.p99),
  ]);
  return [
    `${r.model}: shadow versions (${route}; agreeing: every output element within ${tolerance ?? '?'} of the caller's; latency on the mirrored requests)`,
    ...alignedLines([COLUMNS, ...rows]),
  ];
}

export function addShadowCommands(program: Command): void {
  const shadow = program.command('shadow').description('shadow versions: requests mirrored after the caller\'s answer, compared, never returned (admin API)');

  adminOptions(shadow.command('report <model>')
    .description('per shadow version: mirrored, dropped, errors, agreement with the caller\'s answers, latency beside the caller\'s')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (m: string, o: { url: string; key?: string; json?: boolean }) => {
      checkName(m, 'model name');
      const r = (await request(adminTarget(o), 'GET', `/v1/admin/models/${encodeURIComponent(m)}/shadow`)) as ShadowReportJson;
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else for (const l of shadowTable(r)) console.log(l);
    });
}
