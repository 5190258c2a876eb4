/**
 * `npm run chaos -- <scenario>... | all | fast | --list`: runs fault scenarios against Sluice
 * child processes and prints PASS or FAIL per check with figures; exits 1 if any failed.
 * `--json <file>` also writes the reports as JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatReport, runScenario, type ScenarioReport } from './runner.js';
import { scenarios } from './scenarios/index.js';

function usage(): never {
  process.stderr.write('usage: npm run chaos -- <scenario>... | all | fast | --list  [--json <file>]\n');
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.length === 0) usage();
  if (args.includes('--list')) {
    const w = Math.max(...scenarios.map((s) => s.name.length));
    for (const s of scenarios) {
      const needs = s.needs.length ? ` [needs ${s.needs.join(', ')}]` : '';
      process.stdout.write(`${s.name.padEnd(w)}  ${s.fast ? 'fast' : '    '}  ${s.description}${needs}\n`);
    }
    return;
  }
  let json: string | undefined;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--json') json = args[++i] ?? usage();
    else names.push(args[i]!);
  }
  const chosen = names.flatMap((n) => {
    if (n === 'all') return scenarios;
    if (n === 'fast') return scenarios.filter((s) => s.fast);
    const s = scenarios.find((x) => x.name === n);
    if (!s) {
      process.stderr.write(`unknown scenario "${n}"; --list shows them\n`);
      process.exit(2);
    }
    return [s];
  });
  const reports: ScenarioReport[] = [];
  for (const s of chosen) {
    process.stdout.write(`== ${s.name}: ${s.description}\n`);
    const r = await runScenario(s);
    reports.push(r);
    process.stdout.write(`${formatReport(r)}\n\n`);
  }
  if (reports.length > 1) {
    process.stdout.write('== summary\n');
    for (const r of reports) process.stdout.write(`  ${r.pass ? 'PASS' : 'FAIL'}  ${r.name} (${r.seconds.toFixed(1)} s)\n`);
  }
  if (json) {
    mkdirSync(path.dirname(path.resolve(json)), { recursive: true });
    writeFileSync(json, JSON.stringify(reports, null, 2));
  }
  process.exitCode = reports.every((r) => r.pass) ? 0 : 1;
}

void main();
