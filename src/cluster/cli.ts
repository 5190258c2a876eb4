/**
 * `npm run cluster -- [--replicas 3] [--http-port 8080] [--grpc-port 8081] [--stats-port 8404]`:
 * PostgreSQL, S3 (moto), N Sluice replicas and HAProxy in front; prints where everything is and
 * runs until Ctrl-C or SIGTERM, then stops all of it.
 */
import { Command, InvalidArgumentError } from 'commander';
import { toSluiceError } from '../errors.js';
import { startCluster, MAX_REPLICAS, type Cluster } from './cluster.js';

const int = (name: string) => (v: string): number => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};

interface Args { replicas: number; httpPort: number; grpcPort: number; statsPort: number }

function describe(c: Cluster): string {
  const rows: Array<[string, string]> = [
    ['HTTP (balancer)', c.http],
    ['gRPC (balancer)', `${c.grpc}  (h2c, no TLS)`],
    ['dashboard', `${c.http}/dashboard  (admin key)`],
    ['HAProxy stats', c.stats],
    ...c.replicas.map((r): [string, string] => [`replica ${r.id}`, `${r.http}  gRPC ${r.grpc}  log ${r.logFile}`]),
    ['admin key', c.adminKey],
    ['PostgreSQL', c.databaseUrl],
    ['S3 (moto)', c.s3Endpoint],
    ['files', c.dir],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return [
    `sluice cluster: ${c.replicas.length} replicas behind HAProxy, sharing PostgreSQL and S3`,
    ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`),
    `try:  curl -s ${c.http}/v2/models/demo-logistic   (each request goes to the next replica)`,
    `      npm run loadtest -- --url ${c.http} --model demo-logistic --rate 500 --duration 10`,
    `      npm run loadtest -- --url ${c.grpc} --protocol grpc --model demo-logistic --rate 500 --duration 10`,
    '      admin calls (any replica, or the balancer) take  -H "authorization: Bearer <admin key>"',
    'Ctrl-C stops everything (and removes the files).',
  ].join('\n');
}

async function run(a: Args): Promise<void> {
  const aborter = new AbortController();
  let cluster: Cluster | undefined;
  let stopping: Promise<void> | undefined;
  // npm forwards a Ctrl-C that the terminal also delivered: one stop, however many signals.
  const onSignal = (signal: string): void => {
    if (stopping || aborter.signal.aborted) return;
    process.stdout.write(`\n${signal}: stopping the cluster ...\n`);
    if (!cluster) {
      aborter.abort();
      return;
    }
    stopping = cluster.stop().then(() => {
      process.stdout.write('cluster stopped\n');
      process.exit(0);
    }, (e: unknown) => {
      process.stderr.write(`cluster: stopping failed: ${(e as Error).message}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const t0 = Date.now();
  try {
    cluster = await startCluster({
      ...a,
      signal: aborter.signal,
      onProgress: (m) => process.stdout.write(`cluster: ${m}\n`),
      onReplicaExit: (r, code) => process.stdout.write(`cluster: replica ${r.id} exited (${code ?? 'killed'}); HAProxy sends its traffic to the others\n`),
    });
  } catch (e) {
    if (aborter.signal.aborted) {
      process.stdout.write('cluster stopped before it started\n');
      process.exit(0);
    }
    throw e;
  }
  process.stdout.write(`${describe(cluster)}\n(up in ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
}

const program = new Command('npm run cluster --')
  .description('PostgreSQL, S3 (moto), N Sluice replicas and HAProxy (HTTP and gRPC) on this machine, until Ctrl-C')
  .option('--replicas <n>', `Sluice replica processes (1-${MAX_REPLICAS})`, int('--replicas'), 3)
  .option('--http-port <port>', 'the balancer\'s HTTP port (0 = any free port)', int('--http-port'), 8080)
  .option('--grpc-port <port>', 'the balancer\'s gRPC port, h2c (0 = any free port)', int('--grpc-port'), 8081)
  .option('--stats-port <port>', 'HAProxy\'s stats page (0 = any free port)', int('--stats-port'), 8404)
  .addHelpText('after', `
Each replica runs \`node dist/src/main.js\` with its own SLUICE_REPLICA_ID and data directory,
the shared SLUICE_DATABASE_URL and SLUICE_S3_*, one I/O thread and one worker, and a 3 s drain
grace period; any SLUICE_* variable set here reaches every replica (e.g. SLUICE_WORKERS=2).
Needs /usr/sbin/haproxy and PostgreSQL binaries (SLUICE_PG_BIN, default /usr/lib/postgresql/15/bin);
the first run installs moto into a virtualenv (SLUICE_MOTO_VENV, kept for later runs).`)
  .action(run);

program.parseAsync(process.argv).catch((e: unknown) => {
  const err = toSluiceError(e, 'INTERNAL', e instanceof Error ? e.message : String(e));
  process.stderr.write(`cluster: ${err.message}\n`);
  process.exit(1);
});
