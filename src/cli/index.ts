#!/usr/bin/env node
/**
 * The `sluice` command: serve, predict, loadtest, models, route, shadow, policies, experiments, alerts, deploy. Errors print one line and exit non-zero.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { Config } from '../config/index.js';
import { toSluiceError } from '../errors.js';
import { checkName } from '../names.js';
import { serveUntilSignalled, version } from '../serve.js';
import { addAlertCommands } from './alerts.js';
import { addDeployCommands } from './deploy.js';
import { addExperimentCommands } from './experiments.js';
import { addModelCommands } from './models.js';
import { addPolicyCommands } from './policies.js';
import { predict } from './predict.js';
import { addRouteCommands } from './routes.js';
import { addShadowCommands } from './shadow.js';

const int = (name: string, min: number) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
  return n;
};

function fail(e: unknown): never {
  const err = e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string' ? e as Error & { code: string } : toSluiceError(e, 'INTERNAL', e instanceof Error ? e.message : String(e));
  console.error(`sluice: ${err.message} (${err.code})`);
  process.exit(1);
}

// Positional options: the program's own options (--version, --help) count only before the
// subcommand, so a subcommand may have an option of the same name (`models register --version`);
// without this, commander took `--version` anywhere as the program's and printed its version.
const program = new Command('sluice')
  .description('Sluice model-serving engine')
  .enablePositionalOptions()
  .version(version);

program.command('serve')
  .description('serve the model repository over HTTP and gRPC (what npm start does)')
  .option('--host <address>', 'listen address for HTTP and gRPC')
  .option('--http-port <port>', 'HTTP port', int('--http-port', 0))
  .option('--grpc-port <port>', 'gRPC port', int('--grpc-port', 0))
  .option('--models <dir>', 'model repository directory')
  .option('--workers <n>', 'pool worker threads', int('--workers', 0))
  .option('--config <file.json>', 'JSON file of settings (the names in src/config/index.ts, e.g. {"httpPort": 9000})')
  .action(async (a: { host?: string; httpPort?: number; grpcPort?: number; models?: string; workers?: number; config?: string }) => {
    const overrides: Partial<Config> = {};
    if (a.config) {
      const { readFile } = await import('node:fs/promises');
      Object.assign(overrides, JSON.parse(await readFile(a.config, 'utf8')) as Partial<Config>);
    }
    if (a.host) Object.assign(overrides, { httpHost: a.host, grpcHost: a.host });
    if (a.httpPort !== undefined) overrides.httpPort = a.httpPort;
    if (a.grpcPort !== undefined) overrides.grpcPort = a.grpcPort;
    if (a.models) overrides.modelRepository = path.resolve(a.models);
    if (a.workers !== undefined) overrides.workers = a.workers;
    await serveUntilSignalled(overrides);
  });

program.command('predict')
  .description('stream a .jsonl or .csv file of rows through a model into a .jsonl file of outputs')
  .requiredOption('--model <name>', 'model to run')
  .requiredOption('--input <file>', 'rows: .jsonl (arrays or objects by input name) or .csv (numbers)')
  .requiredOption('--output <file>', 'outputs, one JSON line per row, in order')
  .option('--url <url>', 'a Sluice server (e.g. http://127.0.0.1:8000); in-process when omitted')
  .option('--models <dir>', 'model repository for in-process runs')
  .option('--batch <rows>', 'rows per request', int('--batch', 1), 1024)
  .option('--window <n>', 'requests in flight', int('--window', 1), 4)
  .option('--key <key>', 'API key (or SLUICE_API_KEY)')
  .option('--quiet', 'no progress bar')
  .action(async (a: { model: string; input: string; output: string; url?: string; models?: string; batch: number; window: number; key?: string; quiet?: boolean }) => {
    checkName(a.model, 'model name');
    const r = await predict({
      model: a.model, input: a.input, output: a.output, url: a.url, batch: a.batch, window: a.window,
      key: a.key ?? process.env.SLUICE_API_KEY, quiet: a.quiet,
      engine: { modelRepository: a.models ? path.resolve(a.models) : undefined, workers: 1 } as Partial<Config>,
    });
    console.log(`predicted ${r.rows.toLocaleString('en-US')} rows with ${a.model}@${r.version} in ${r.seconds.toFixed(2)} s (${Math.round(r.rows / r.seconds).toLocaleString('en-US')} rows/s) -> ${a.output}`);
    process.exit(0);
  });

addModelCommands(program);
addRouteCommands(program);
addShadowCommands(program);
addPolicyCommands(program);
addExperimentCommands(program);
addAlertCommands(program);
addDeployCommands(program);

program.command('loadtest')
  .description('open-loop load test of any Open Inference Protocol server (see loadtest/README.md)')
  .allowUnknownOption(true)
  .helpOption(false)
  .argument('[options...]')
  .action(async (args: string[]) => {
    const { main } = await import('../../loadtest/cli.js');
    await main(args);
  });

program.parseAsync(process.argv).catch(fail);
process.on('unhandledRejection', fail);
