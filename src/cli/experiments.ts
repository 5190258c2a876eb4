/**
 * `sluice experiments create|list|show|results|stop|promote|weights|covariates`: A/B/n
 * experiments through the admin API `/v1/admin/experiments` (--url, --key or SLUICE_API_KEY, as
 * `sluice route`). Text by default, the server's answer as it is with `--json` (list, show,
 * results). Input the command reads itself (the definition file, weights, the covariates file)
 * is checked whole before anything is sent: a fault is one line naming it, exit code 1.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseExperiment } from '../control/experiments/spec.js';
import { SluiceError } from '../errors.js';
import { checkName } from '../names.js';
import { adminOptions, adminTarget, request, type AdminTarget } from './admin-client.js';
import { covariateBodies, parseCovariates } from './covariates.js';
import {
  describeDecision, experimentLines, listLines, resultsLines,
  type ExperimentJson, type ExperimentListJson, type ResultsJson,
} from './experiment-tables.js';
import { Progress } from './progress.js';

const BASE = '/v1/admin/experiments';

interface Target {
  url: string;
  key?: string;
}

function bad(message: string): SluiceError {
  return new SluiceError('INVALID_ARGUMENT', message);
}

function path(name: string, tail = ''): string {
  return `${BASE}/${encodeURIComponent(checkName(name, 'experiment name'))}${tail}`;
}

/** A file's text, or stdin's for `-`. */
async function readText(file: string): Promise<string> {
  try {
    if (file !== '-') return await readFile(file, 'utf8');
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  } catch (e) {
    throw bad(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function send(t: AdminTarget, method: string, p: string, body: unknown): Promise<unknown> {
  return request(t, method, p, { chunks: [Buffer.from(JSON.stringify(body))], headers: { 'content-type': 'application/json' } });
}

function print(json: boolean | undefined, answer: unknown, lines: () => string[]): void {
  if (json) console.log(JSON.stringify(answer, null, 2));
  else for (const l of lines()) console.log(l);
}

/** `variant=weight` arguments as the endpoint's {variant: weight}; INVALID_ARGUMENT otherwise. */
export function parseWeights(args: string[]): Record<string, number> {
  const weights: Record<string, number> = {};
  for (const a of args) {
    const m = /^([^=]+)=([^=]+)$/.exec(a);
    const w = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(w) || w <= 0) throw bad(`weight ${JSON.stringify(a)}: write variant=weight with a weight > 0, e.g. control=0.8 treatment=0.2`);
    if (Object.hasOwn(weights, m[1]!)) throw bad(`weight for ${JSON.stringify(m[1])} given twice`);
    weights[m[1]!] = w;
  }
  return weights;
}

function reasonOf(o: { reason?: string }): { reason?: string } {
  return o.reason !== undefined ? { reason: o.reason } : {};
}

export function addExperimentCommands(program: Command): void {
  const experiments = program.command('experiments').description('A/B/n experiments: create, follow, stop and promote (admin API)');

  adminOptions(experiments.command('create')
    .description('start an experiment: its route goes into force at once (definition: see src/control/experiments/spec.ts)')
    .option('--file <def.json>', 'the definition as JSON, or - for stdin'))
    .action(async (o: Target & { file?: string }) => {
      if (o.file === undefined) throw bad('give the definition as --file def.json (or --file - for stdin)');
      const text = await readText(o.file);
      let def: unknown;
      try {
        def = JSON.parse(text);
      } catch (e) {
        throw bad(`cannot read ${o.file} as JSON: ${(e as Error).message}`);
      }
      parseExperiment(def); // the server's checks, here first
      const r = (await send(adminTarget(o), 'POST', BASE, def)) as ExperimentJson & { route_generation: number };
      console.log(`${r.name}: running on ${r.model} (route generation ${r.route_generation}): ${r.spec.variants.map((v) => `${v.name}=${v.version}`).join(', ')}`);
    });

  adminOptions(experiments.command('list')
    .description('every experiment, newest last, with its latest decision or its outcome')
    .option('--status <status>', 'only running or stopped ones')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (o: Target & { status?: string; json?: boolean }) => {
      if (o.status !== undefined && o.status !== 'running' && o.status !== 'stopped') throw bad(`--status ${JSON.stringify(o.status)}: write running or stopped`);
      const r = (await request(adminTarget(o), 'GET', o.status ? `${BASE}?status=${o.status}` : BASE)) as ExperimentListJson[];
      print(o.json, r, () => listLines(r));
    });

  adminOptions(experiments.command('show <name>')
    .description('an experiment\'s definition, state and last decision')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (name: string, o: Target & { json?: boolean }) => {
      const r = (await request(adminTarget(o), 'GET', path(name))) as ExperimentJson;
      print(o.json, r, () => experimentLines(r));
    });

  adminOptions(experiments.command('results <name>')
    .description('a fresh analysis: per metric and variant units, mean, CI of the difference, lift, p-values fixed and sequential; SRM; the decision')
    .option('--json', 'print the server\'s answer as JSON'))
    .action(async (name: string, o: Target & { json?: boolean }) => {
      const r = (await request(adminTarget(o), 'GET', path(name, '/results'))) as ResultsJson;
      print(o.json, r, () => resultsLines(r));
    });

  adminOptions(experiments.command('stop <name>')
    .description('stop an experiment by hand: its route is removed, the model serves its production version')
    .option('--reason <text>', 'why (kept as the outcome)'))
    .action(async (name: string, o: Target & { reason?: string }) => {
      const r = (await send(adminTarget(o), 'POST', path(name, '/stop'), reasonOf(o))) as ExperimentJson;
      console.log(`${r.name}: stopped (${describeDecision(r.outcome)}); ${r.model} serves its production version`);
    });

  adminOptions(experiments.command('promote <name>')
    .description('make a variant\'s version production (stops the experiment if it runs); without --variant, the winner')
    .option('--variant <variant>', 'the variant to promote (default: the winner)')
    .option('--reason <text>', 'why (goes into the audit log)'))
    .action(async (name: string, o: Target & { variant?: string; reason?: string }) => {
      const body = { ...(o.variant !== undefined ? { variant: o.variant } : {}), ...reasonOf(o) };
      const r = (await send(adminTarget(o), 'POST', path(name, '/promote'), body)) as ExperimentJson & {
        promoted: { version: string; replaced_production: string | null; changed: boolean };
        archived: Array<{ version: string }>;
      };
      const replaced = r.promoted.replaced_production !== null ? ` (was ${r.promoted.replaced_production})` : '';
      const archived = r.archived.length ? `; archived ${r.archived.map((a) => a.version).join(', ')}` : '';
      console.log(`${r.name}: ${r.model} version ${r.promoted.version} ${r.promoted.changed ? `is production now${replaced}` : 'was production already'}${archived}`);
    });

  adminOptions(experiments.command('weights <name> <weights...>')
    .description('change the allocation of a running experiment: variant=weight for every variant (hash routes move only the units they must)')
    .option('--reason <text>', 'why (goes into the audit log)'))
    .action(async (name: string, args: string[], o: Target & { reason?: string }) => {
      const weights = parseWeights(args);
      const r = (await send(adminTarget(o), 'PUT', path(name, '/weights'), { weights, ...reasonOf(o) })) as {
        route_generation: number; changed: boolean; weights: Record<string, number>;
      };
      const shares = Object.entries(r.weights).map(([v, w]) => `${v} ${Number((w * 100).toPrecision(4))}%`).join(', ');
      console.log(`${name}: ${r.changed ? 'weights in force' : 'weights unchanged'} (route generation ${r.route_generation}): ${shares}`);
    });

  adminOptions(experiments.command('covariates <name>')
    .description('upload a pre-period covariate per unit for CUPED (units the experiment has not seen are counted, not stored)')
    .option('--file <units.csv>', 'CSV lines unit_id,value (a header line is optional), a JSON list of {"unit_id", "value"}, or - for stdin'))
    .action(async (name: string, o: Target & { file?: string }) => {
      const p = path(name, '/covariates');
      if (o.file === undefined) throw bad('give the covariates as --file units.csv (or --file - for stdin)');
      const values = parseCovariates(await readText(o.file), o.file === '-' ? 'stdin' : o.file);
      const bodies = covariateBodies(values);
      const progress = bodies.length > 1 ? new Progress('covariates') : undefined;
      const total = { received: 0, stored: 0, unknown: 0 };
      for (const b of bodies) {
        const r = (await request(adminTarget(o), 'POST', p, { chunks: [b.body], headers: { 'content-type': 'application/json' } })) as {
          received: number; stored: number; unknown_units: number;
        };
        total.received += r.received;
        total.stored += r.stored;
        total.unknown += r.unknown_units;
        progress?.update(total.received, 'units', total.received / values.length);
      }
      progress?.done();
      const n = (x: number) => x.toLocaleString('en-US');
      console.log(`${name}: ${n(total.received)} covariates received in ${bodies.length} request${bodies.length === 1 ? '' : 's'}, ${n(total.stored)} stored, ${n(total.unknown)} for units the experiment has not seen`);
    });
}
