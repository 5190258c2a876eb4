/**
 * Three replicas, one command: PostgreSQL and an S3-compatible server (as CI starts them),
 * N Sluice replica processes sharing them, and HAProxy in front (HTTP and gRPC). What
 * `npm run cluster` runs (src/cluster/cli.ts) and what test/integration/cluster.test.ts drives.
 *
 * Replicas share nothing but the database and the bucket: promotions, routes and experiment
 * decisions made on one reach the others through the registry (LISTEN/NOTIFY), exactly as on
 * separate machines. Everything lives in one temp directory, removed by stop().
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startSluiceProcess } from '../../loadtest/sluice-process.js';
import { SluiceError } from '../errors.js';
import { clusterWatchdogEntry } from '../paths.js';
import { GRPC_BACKEND, HAPROXY_BIN, HTTP_BACKEND, startHaproxy, type Haproxy } from './haproxy.js';
import { defaultMotoVenv, startServices, type ClusterServices } from './services.js';

export const MAX_REPLICAS = 16;

export interface ClusterOptions {
  /** Replica processes (1 to MAX_REPLICAS). */
  replicas: number;
  /** The balancer's ports on 127.0.0.1 (0 = a free port). */
  httpPort: number;
  grpcPort: number;
  /** HAProxy's stats page (0 = a free port). */
  statsPort: number;
  /** Added to every replica's environment, over everything else. */
  env?: Record<string, string>;
  /** PostgreSQL binaries (else scripts/ci/postgres.sh's default). */
  pgBin?: string;
  /** moto's virtualenv, kept between runs (else services.ts's defaultMotoVenv). */
  motoVenv?: string;
  haproxyBin?: string;
  /** One line per start-up step, for the terminal. */
  onProgress?: (message: string) => void;
  /** A replica that exits while the cluster runs (not during stop()). */
  onReplicaExit?: (replica: Replica, code: number | null) => void;
  /** Aborting stops the start-up after its current step and undoes what it started. */
  signal?: AbortSignal;
}

export interface Replica {
  /** Its SLUICE_REPLICA_ID and its server name in HAProxy: r1, r2, ... */
  id: string;
  /** http://127.0.0.1:<port>, bypassing the balancer. */
  http: string;
  /** 127.0.0.1:<port> */
  grpc: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Its JSON log. */
  logFile: string;
}

export interface Cluster {
  /** The directory holding the databases, the replicas' data and logs, and haproxy.cfg. */
  dir: string;
  /** The balancer: http://127.0.0.1:<port> and 127.0.0.1:<port> (h2c). */
  http: string;
  grpc: string;
  /** HAProxy's stats page. */
  stats: string;
  adminKey: string;
  databaseUrl: string;
  s3Endpoint: string;
  replicas: Replica[];
  haproxy: Haproxy;
  /** HAProxy's view of one replica on both backends, e.g. { http: 'UP', grpc: 'UP' }. */
  replicaState(id: string): Promise<{ http: string | undefined; grpc: string | undefined }>;
  /** Stops the balancer, the replicas (in-flight requests finish), S3 and PostgreSQL; removes dir. */
  stop(): Promise<void>;
}

/**
 * Replica settings the cluster picks unless the caller's environment sets them: one I/O thread
 * and one worker each (N replicas share one machine), and a drain grace period comfortably
 * longer than HAProxy takes to mark a replica down (2 checks 500 ms apart).
 */
const REPLICA_DEFAULTS: Record<string, string> = { SLUICE_IO_THREADS: '1', SLUICE_WORKERS: '1', SLUICE_DRAIN_GRACE_MS: '3000' };

export function checkClusterOptions(o: Pick<ClusterOptions, 'replicas' | 'httpPort' | 'grpcPort' | 'statsPort'>): void {
  if (!Number.isInteger(o.replicas) || o.replicas < 1 || o.replicas > MAX_REPLICAS) throw new SluiceError('CONFIG_INVALID', `--replicas must be an integer in [1, ${MAX_REPLICAS}], got ${o.replicas}`);
  for (const [name, port] of [['--http-port', o.httpPort], ['--grpc-port', o.grpcPort], ['--stats-port', o.statsPort]] as const) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new SluiceError('CONFIG_INVALID', `${name} must be an integer in [0, 65535], got ${port}`);
  }
  const fixed = [o.httpPort, o.grpcPort, o.statsPort].filter((p) => p !== 0);
  if (new Set(fixed).size !== fixed.length) throw new SluiceError('CONFIG_INVALID', '--http-port, --grpc-port and --stats-port must differ');
}

/** A TCP port free on 127.0.0.1 now (HAProxy cannot report a port 0 binding back). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Whether 127.0.0.1:port can be bound now: checked before anything starts, to fail in a second rather than after the replicas. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Waits for a process's exit, SIGKILLing it after `ms`. */
async function exitWithin(r: Replica, ms: number): Promise<void> {
  const timer = setTimeout(() => r.child.kill('SIGKILL'), ms);
  await r.exited;
  clearTimeout(timer);
}

const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  checkClusterOptions(o);
  for (const [name, port] of [['--http-port', o.httpPort], ['--grpc-port', o.grpcPort], ['--stats-port', o.statsPort]] as const) {
    if (port !== 0 && !(await portFree(port))) throw new SluiceError('CONFIG_INVALID', `${name} ${port}: the port is in use on 127.0.0.1`);
  }
  const progress = o.onProgress ?? (() => undefined);
  const undo: Array<() => Promise<void>> = [];
  const unwind = async (): Promise<void> => {
    for (const f of undo.reverse()) await f().catch(() => undefined);
    undo.length = 0;
  };
  const step = (): void => {
    if (o.signal?.aborted) throw new Error('cluster start-up interrupted');
  };
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-cluster-'));
  undo.push(() => rm(dir, { recursive: true, force: true }));
  // Stops everything below if this process dies without unwinding (src/cluster/watchdog.ts).
  const pidsFile = path.join(dir, 'pids');
  const watchdog = spawn(process.execPath, [clusterWatchdogEntry, dir, pidsFile], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  watchdog.unref();
  (watchdog.stdin as unknown as { unref?: () => void }).unref?.();
  undo.push(async () => {
    watchdog.kill('SIGTERM');
  });
  /** Lists a process group for the watchdog to kill. */
  const watch = (pid: number | undefined) => (pid ? appendFile(pidsFile, `${pid}\n`) : Promise.resolve());
  let stopping = false;
  try {
    await chmod(dir, 0o755); // as root, postgres.sh runs PostgreSQL as the postgres user, which must reach its directory
    const motoVenv = o.motoVenv ?? defaultMotoVenv();
    progress(existsSync(path.join(motoVenv, 'bin', 'moto_server'))
      ? 'starting PostgreSQL and S3 (moto) with scripts/ci ...'
      : `starting PostgreSQL and S3 (moto) with scripts/ci; this first run installs moto into ${motoVenv} (a minute or two) ...`);
    const services: ClusterServices = await startServices(path.join(dir, 'services'), { pgBin: o.pgBin, motoVenv });
    undo.push(() => services.stop());
    step();

    const adminKey = `sk_cluster_${randomBytes(24).toString('hex')}`;
    const defaults = Object.fromEntries(Object.entries(REPLICA_DEFAULTS).map(([k, v]) => [k, process.env[k] ?? v]));
    const replicas: Replica[] = [];
    const startReplica = async (i: number): Promise<Replica> => {
      const id = `r${i}`;
      const dataDir = path.join(dir, id);
      await mkdir(dataDir, { recursive: true });
      const logFile = path.join(dir, `${id}.log`);
      const log = createWriteStream(logFile);
      const p = await startSluiceProcess({
        detached: true,
        env: { ...defaults, ...services.replicaEnv, SLUICE_REPLICA_ID: id, SLUICE_DATA_DIR: dataDir, SLUICE_ADMIN_KEY: adminKey, ...o.env },
        onLog: (line) => log.write(`${line}\n`),
      }).catch((e: unknown) => {
        log.end();
        throw e;
      });
      await watch(p.child.pid);
      const r: Replica = { id, http: p.http, grpc: p.grpc, child: p.child, exited: p.exited, logFile };
      void p.exited.then((code) => {
        log.end();
        if (!stopping) o.onReplicaExit?.(r, code);
      });
      replicas.push(r);
      return r;
    };
    undo.push(async () => {
      for (const r of replicas) if (running(r.child)) r.child.kill('SIGINT');
      await Promise.all(replicas.map((r) => exitWithin(r, 20_000)));
    });
    // The first replica alone: it migrates the empty registry and imports the bundled models;
    // the others then find both done and start side by side.
    progress(`starting replica r1 of ${o.replicas} (it sets up the registry) ...`);
    await startReplica(1);
    step();
    if (o.replicas > 1) progress(`starting replicas r2..r${o.replicas} ...`);
    // allSettled: every start ends (and is in `replicas` to be stopped) before a failure unwinds.
    const rest = await Promise.allSettled(Array.from({ length: o.replicas - 1 }, (_, i) => startReplica(i + 2)));
    const failed = rest.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    replicas.sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
    step();

    const ports = {
      httpPort: o.httpPort || await freePort(),
      grpcPort: o.grpcPort || await freePort(),
      statsPort: o.statsPort || await freePort(),
    };
    progress('starting HAProxy ...');
    const haproxy = await startHaproxy(dir, {
      host: '127.0.0.1', ...ports, statsSocket: path.join(dir, 'haproxy.sock'),
      replicas: replicas.map((r) => ({ name: r.id, httpPort: Number(new URL(r.http).port), grpcPort: Number(r.grpc.split(':').pop()) })),
    }, o.haproxyBin ?? HAPROXY_BIN);
    undo.push(() => haproxy.stop());
    await watch(haproxy.child.pid);
    const replicaState = async (id: string) => {
      const s = await haproxy.serverStates();
      return { http: s.get(`${HTTP_BACKEND}/${id}`), grpc: s.get(`${GRPC_BACKEND}/${id}`) };
    };
    // Serving through the balancer once HAProxy's checks hold every replica up on both backends.
    const deadline = Date.now() + 15_000;
    for (;;) {
      step();
      const states = await Promise.all(replicas.map((r) => replicaState(r.id)));
      if (states.every((s) => s.http === 'UP' && s.grpc === 'UP')) break;
      if (Date.now() > deadline) throw new Error(`HAProxy does not hold every replica up after 15 s: ${JSON.stringify(states)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    let stopped: Promise<void> | undefined;
    return {
      dir, adminKey, replicas, haproxy, replicaState,
      http: `http://127.0.0.1:${ports.httpPort}`,
      grpc: `127.0.0.1:${ports.grpcPort}`,
      stats: `http://127.0.0.1:${ports.statsPort}/`,
      databaseUrl: services.databaseUrl,
      s3Endpoint: services.s3Endpoint,
      stop() {
        stopping = true;
        stopped ??= unwind();
        return stopped;
      },
    };
  } catch (e) {
    stopping = true;
    await unwind();
    throw e;
  }
}
