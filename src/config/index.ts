/**
 * Configuration: one schema with defaults, read from SLUICE_* environment variables (and
 * programmatic overrides), checked once and frozen. Bad values stop start-up with CONFIG_INVALID
 * naming the variable.
 */
import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import { SluiceError } from '../errors.js';
import { isValidName } from '../names.js';
import { bundledModels, projectRoot } from '../paths.js';

export interface Config {
  /** Directory of models in Triton layout: <root>/<name>/<version>/model.json. */
  modelRepository: string;
  /** Models to load at start: all in the repository, or a list of names. */
  startupModels: 'all' | 'none' | string[];
  /**
   * I/O threads serving HTTP, WebSocket and gRPC on the shared ports, each with its own data
   * plane (src/io): with a shared control thread, the main thread (also the control plane) plus
   * ioThreads - 1 workers; with a dedicated one, ioThreads workers.
   */
  ioThreads: number;
  /**
   * Whether the main thread (the control plane: registry, admin, learners, controllers, the
   * decision log) also serves requests ('shared') or serves none ('dedicated').
   */
  controlThread: 'shared' | 'dedicated';
  /** Pool worker threads (0 = run every model inline on the I/O thread). */
  workers: number;
  /** Size of the shared tensor arena for pooled batches, in MiB. */
  arenaMb: number;
  /** Allow the test-only `fixture` model kind. */
  allowFixtureModels: boolean;
  /** How long an idle pool worker keeps polling for batches before sleeping (microseconds). */
  workerSpinUs: number;
  /** How long close() waits for in-flight requests before failing them. */
  drainTimeoutMs: number;
  /**
   * On SIGTERM: how long readiness stays false while the listeners still accept and answer,
   * before they close (load balancers need this long to stop sending here). SIGINT skips it.
   */
  drainGraceMs: number;

  // HTTP front end
  httpHost: string;
  httpPoolWaitUs: number;
  httpPort: number;
  /** Largest request body read; reading stops there (413). */
  maxBodyBytes: number;
  /** Deepest JSON nesting accepted (400 beyond). */
  maxJsonDepth: number;

  // gRPC front end and streams
  grpcHost: string;
  grpcPort: number;
  /** Largest gRPC message received or sent (RESOURCE_EXHAUSTED beyond). */
  grpcMaxMessageBytes: number;
  /** gRPC calls open at once per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); clients queue beyond. */
  grpcMaxConcurrentStreams: number;
  /** Requests in flight per stream (gRPC ModelStreamInfer, WebSocket) before reading pauses. */
  streamMaxInFlight: number;

  // Admission control (overload shedding; src/service/admission.ts)
  /** Refuse inference requests (OVERLOADED) when the server is overloaded. */
  admission: boolean;
  /** Event-loop lag held above this for a whole interval (50 ms) means overloaded. */
  admissionLagTargetMs: number;
  /** One event-loop turn that has run this long (ms) refuses the rest of the requests it reads. */
  admissionTurnBudgetMs: number;
  /** Batcher queueing delay held above this for an interval shrinks the in-flight limit. */
  admissionQueueTargetMs: number;
  /** Bounds of the adaptive limit on inference requests in flight (all transports). */
  admissionMinInFlight: number;
  admissionMaxInFlight: number;
  /** Retry-After (seconds) sent with OVERLOADED refusals. */
  admissionRetryAfterS: number;

  // Registry, artifacts, access control
  /** Directory for embedded state (PGlite database, local artifacts, cache). */
  dataDir: string;
  /** PostgreSQL connection string; embedded PGlite under dataDir when unset. */
  databaseUrl: string | undefined;
  /**
   * Nice value of the embedded database's thread once start-up is over (0 = as the I/O
   * threads; up to 19): under saturation it then yields CPU to serving, and decisions it cannot
   * write in time are dropped (counted) rather than predictions slowed. It gets all the CPU
   * serving leaves idle. Start-up runs at the process's own priority (pglite-thread.ts).
   */
  embeddedDbNice: number;
  /** S3 bucket for artifacts; a local directory under dataDir when unset. */
  s3Bucket: string | undefined;
  s3Prefix: string;
  s3Endpoint: string | undefined;
  s3Region: string;
  s3AccessKeyId: string | undefined;
  s3SecretAccessKey: string | undefined;
  /** Path-style addressing (S3-compatible servers); defaults to true when an endpoint is set. */
  s3ForcePathStyle: boolean | undefined;
  /** Largest artifact upload through the admin API. */
  maxUploadBytes: number;
  /**
   * At start, register the model repository directory's versions in the registry, and make the
   * latest version production for models that have none (so `npm start` serves the demos).
   */
  importModels: boolean;
  /** Admin API key to install instead of generating one on first start. Secret. */
  adminKey: string | undefined;
  /** Whether predict/feedback need a key: auto (only off loopback), always, never. */
  authMode: 'auto' | 'always' | 'never';
  /** Periodic registry reconcile, the safety net under LISTEN/NOTIFY. */
  reconcileMs: number;

  // Decisions and feedback (src/learn)
  /** Decisions buffered for the database at most; beyond, decisions are dropped (counted). */
  decisionsBuffer: number;
  /** Decisions per INSERT at most. */
  decisionsBatchSize: number;
  /** Longest a decision waits in the buffer before its batch is written. */
  decisionsFlushMs: number;
  /** Feedback later than this after its decision is refused (FEEDBACK_TOO_LATE). */
  feedbackJoinWindowMs: number;
  /** Feedback events per database transaction at most. */
  feedbackBatchSize: number;
  /** Longest a feedback event waits for its batch to start. */
  feedbackFlushMs: number;
  /** Feedback batches in flight at once (each its own transaction). */
  feedbackConcurrency: number;
  /** Events per POST /v1/feedback body at most (FEEDBACK_BATCH_TOO_LARGE beyond). */
  feedbackMaxBatch: number;
  /** This replica's name among the processes sharing a database (learned-state deltas). */
  replicaId: string;
  /** How often learners exchange deltas with other replicas (ms). */
  learnerSyncMs: number;
  /** How often learned state is checkpointed (ms); also when a version unloads and at shutdown. */
  checkpointIntervalMs: number;
  /** How often running experiments are analysed (and may stop or promote) (ms). */
  experimentIntervalMs: number;
  /** How often deployments in progress are judged (and may step, roll back or promote) (ms). */
  deploymentIntervalMs: number;

  // Alerts (src/control/alerts)
  /** How often alert rules are evaluated (ms; one replica at a time). */
  alertIntervalMs: number;
  /** Webhook URLs every alert notice is POSTed to (Slack-compatible JSON). Secret: they often carry a token. */
  alertWebhooks: string[];
  /** How often each served version's performance is written to the registry (ms). */
  performanceIntervalMs: number;
  /** The p99 latency objective (ms) the built-in alert `p99-above-slo` compares with. */
  latencySloMs: number;
  /** Webhooks retraining requests are POSTed to (a trainer's intake). Secret: they may carry a token. */
  retrainWebhooks: string[];
  /** An automatic retraining trigger does not repeat for a model within this (ms). */
  retrainCooldownMs: number;
  /** How often retraining schedules are checked (ms). */
  retrainIntervalMs: number;

  // The dashboard (GET /dashboard; src/service/dashboard.ts)
  /** How often the dashboard's snapshot is rebuilt and sent while someone watches (ms). */
  dashboardIntervalMs: number;
  /** Live dashboard streams open at once on the whole server (every I/O thread). */
  dashboardMaxViewers: number;

  // Drift monitoring (src/analyze/drift-sampler.ts, drift-monitor.ts)
  /** Share of requests whose rows and predictions are sampled for drift, per version (0 = off). */
  driftSampleRate: number;
  /** Sampled rows of a version that form its reference (the first ones it answers). */
  driftReferenceRows: number;
  /** Length of a drift window: the recent sample compared with the reference restarts this often (ms). */
  driftWindowMs: number;
}

type Env = Record<string, string | undefined>;

interface Field<T> {
  env: string;
  doc: string;
  /** Never echo the value (in errors or anywhere else). */
  secret?: boolean;
  default: () => T;
  parse: (raw: string, name: string) => T;
}

function invalid(name: string, what: string): SluiceError {
  return new SluiceError('CONFIG_INVALID', `${name}: ${what}`);
}

const int = (min: number, max: number) => (raw: string, name: string): number => {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw invalid(name, `must be an integer in [${min}, ${max}], got "${raw}"`);
  return n;
};

const ratio = (raw: string, name: string): number => {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw invalid(name, `must be a number in [0, 1], got "${raw}"`);
  return n;
};

const bool = (raw: string, name: string): boolean => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw invalid(name, `must be true or false, got "${raw}"`);
};

const dir = (raw: string): string => path.resolve(raw);

const text = (raw: string): string => raw;
const replicaName = (raw: string, name: string): string => {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(raw)) throw invalid(name, 'must be 1 to 128 letters, digits, ".", "_", ":" or "-"');
  return raw;
};

const optional = <T>(parse: (raw: string, name: string) => T) => (raw: string, name: string): T | undefined =>
  raw.trim() === '' ? undefined : parse(raw, name);

const oneOf = <T extends string>(...values: T[]) => (raw: string, name: string): T => {
  const v = raw.trim().toLowerCase() as T;
  if (!values.includes(v)) throw invalid(name, `must be one of ${values.join(', ')}, got "${raw}"`);
  return v;
};

const url = (raw: string, name: string): string => {
  try {
    new URL(raw);
  } catch {
    // Never echo it: connection strings carry passwords.
    throw invalid(name, 'must be a URL');
  }
  return raw;
};

const urlList = (raw: string, name: string): string[] => {
  const urls = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw invalid(name, 'must be a comma-separated list of http(s) URLs');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalid(name, 'must be a comma-separated list of http(s) URLs');
  }
  return urls;
};

const modelList = (raw: string, name: string): Config['startupModels'] => {
  const v = raw.trim();
  if (v === 'all' || v === '*') return 'all';
  if (v === 'none' || v === '') return 'none';
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.every(isValidName)) throw invalid(name, 'must be "all", "none" or a comma-separated list of model names');
  return names;
};

/** The schema: every setting, its variable, default and meaning (README lists the same). */
export const schema: { [K in keyof Config]: Field<Config[K]> } = {
  modelRepository: { env: 'SLUICE_MODEL_REPOSITORY', doc: 'model repository directory', default: () => bundledModels, parse: dir },
  startupModels: { env: 'SLUICE_MODELS', doc: 'models to load at start: all, none, or a comma list', default: () => 'all', parse: modelList },
  ioThreads: { env: 'SLUICE_IO_THREADS', doc: 'I/O threads serving the shared ports (with a shared control thread the main thread is one of them; 1 = main thread only)', default: () => availableParallelism(), parse: int(1, 256) },
  controlThread: { env: 'SLUICE_CONTROL_THREAD', doc: 'shared: the main thread (the control plane) is also an I/O thread; dedicated: it serves no requests, and every I/O thread is a worker', default: () => 'shared', parse: oneOf('shared', 'dedicated') },
  workers: { env: 'SLUICE_WORKERS', doc: 'pool worker threads (0 = all inline)', default: () => Math.max(1, availableParallelism() - 1), parse: int(0, 256) },
  arenaMb: { env: 'SLUICE_ARENA_MB', doc: 'shared tensor arena size in MiB', default: () => 64, parse: int(1, 16384) },
  allowFixtureModels: { env: 'SLUICE_ALLOW_FIXTURE_MODELS', doc: 'allow test-only fixture models', default: () => false, parse: bool },
  workerSpinUs: { env: 'SLUICE_WORKER_SPIN_US', doc: 'how long an idle pool worker polls for work before sleeping (us)', default: () => 200, parse: int(0, 1_000_000) },
  drainTimeoutMs: { env: 'SLUICE_DRAIN_TIMEOUT_MS', doc: 'how long shutdown waits for in-flight requests', default: () => 10_000, parse: int(0, 600_000) },
  drainGraceMs: { env: 'SLUICE_DRAIN_GRACE_MS', doc: 'on SIGTERM, how long readiness is false while listeners still serve, before they close', default: () => 5_000, parse: int(0, 600_000) },
  httpHost: { env: 'SLUICE_HTTP_HOST', doc: 'HTTP listen address', default: () => '127.0.0.1', parse: text },
  httpPoolWaitUs: { env: 'SLUICE_HTTP_POOL_WAIT_US', doc: 'how long an HTTP request to a pooled model may hold its I/O thread for the answer, so that requests pipelined behind it are answered (us; 0 = never; not for versions whose recent batches took more than a quarter of it)', default: () => 20_000, parse: int(0, 1_000_000) },
  httpPort: { env: 'SLUICE_HTTP_PORT', doc: 'HTTP port (0 = any free port)', default: () => 8000, parse: int(0, 65535) },
  maxBodyBytes: { env: 'SLUICE_MAX_BODY_BYTES', doc: 'largest request body', default: () => 16 * 1024 * 1024, parse: int(1024, 2 ** 31 - 1) },
  maxJsonDepth: { env: 'SLUICE_MAX_JSON_DEPTH', doc: 'deepest JSON nesting accepted', default: () => 32, parse: int(4, 1000) },
  grpcHost: { env: 'SLUICE_GRPC_HOST', doc: 'gRPC listen address', default: () => '127.0.0.1', parse: text },
  grpcPort: { env: 'SLUICE_GRPC_PORT', doc: 'gRPC port (0 = any free port)', default: () => 8001, parse: int(0, 65535) },
  grpcMaxMessageBytes: { env: 'SLUICE_GRPC_MAX_MESSAGE_BYTES', doc: 'largest gRPC message', default: () => 16 * 1024 * 1024, parse: int(1024, 2 ** 31 - 1) },
  grpcMaxConcurrentStreams: { env: 'SLUICE_GRPC_MAX_CONCURRENT_STREAMS', doc: 'gRPC calls open at once per connection', default: () => 256, parse: int(1, 65536) },
  streamMaxInFlight: { env: 'SLUICE_STREAM_MAX_IN_FLIGHT', doc: 'requests in flight per stream', default: () => 64, parse: int(1, 65536) },
  admission: { env: 'SLUICE_ADMISSION', doc: 'refuse inference requests with OVERLOADED when overloaded', default: () => true, parse: bool },
  admissionLagTargetMs: { env: 'SLUICE_ADMISSION_LAG_TARGET_MS', doc: 'event-loop lag (ms) that, held for an interval, sheds load', default: () => 3, parse: int(1, 10_000) },
  admissionTurnBudgetMs: { env: 'SLUICE_ADMISSION_TURN_BUDGET_MS', doc: 'how long (ms) one event-loop turn may run before it refuses the rest of the requests it reads', default: () => 2, parse: int(1, 10_000) },
  admissionQueueTargetMs: { env: 'SLUICE_ADMISSION_QUEUE_TARGET_MS', doc: 'batcher queueing delay (ms) that, held for an interval, shrinks the in-flight limit', default: () => 5, parse: int(1, 60_000) },
  admissionMinInFlight: { env: 'SLUICE_ADMISSION_MIN_IN_FLIGHT', doc: 'lowest adaptive limit on requests in flight to pooled models (per I/O thread)', default: () => 8, parse: int(1, 1_000_000) },
  admissionMaxInFlight: { env: 'SLUICE_ADMISSION_MAX_IN_FLIGHT', doc: 'highest adaptive in-flight limit, and the fixed ceiling on all inference requests in flight (per I/O thread, all transports)', default: () => 4096, parse: int(1, 1_000_000) },
  admissionRetryAfterS: { env: 'SLUICE_ADMISSION_RETRY_AFTER_S', doc: 'Retry-After seconds sent with OVERLOADED', default: () => 1, parse: int(0, 3600) },
  dataDir: { env: 'SLUICE_DATA_DIR', doc: 'embedded state directory', default: () => path.join(projectRoot, 'data'), parse: dir },
  databaseUrl: { env: 'SLUICE_DATABASE_URL', doc: 'PostgreSQL URL (embedded PGlite when unset)', secret: true, default: () => undefined, parse: optional(url) },
  embeddedDbNice: { env: 'SLUICE_EMBEDDED_DB_NICE', doc: 'nice value (0-19) of the embedded database thread once serving (start-up runs at the process\'s own): yields CPU to serving under saturation', default: () => 10, parse: int(0, 19) },
  s3Bucket: { env: 'SLUICE_S3_BUCKET', doc: 'S3 bucket for artifacts (local directory when unset)', default: () => undefined, parse: optional(text) },
  s3Prefix: { env: 'SLUICE_S3_PREFIX', doc: 'key prefix inside the bucket', default: () => '', parse: text },
  s3Endpoint: { env: 'SLUICE_S3_ENDPOINT', doc: 'S3-compatible endpoint URL', default: () => undefined, parse: optional(url) },
  s3Region: { env: 'SLUICE_S3_REGION', doc: 'S3 region', default: () => 'us-east-1', parse: text },
  s3AccessKeyId: { env: 'SLUICE_S3_ACCESS_KEY_ID', doc: 'S3 access key id (else the AWS default chain)', secret: true, default: () => undefined, parse: optional(text) },
  s3SecretAccessKey: { env: 'SLUICE_S3_SECRET_ACCESS_KEY', doc: 'S3 secret key', secret: true, default: () => undefined, parse: optional(text) },
  s3ForcePathStyle: { env: 'SLUICE_S3_FORCE_PATH_STYLE', doc: 'path-style S3 addressing', default: () => undefined, parse: optional(bool) },
  maxUploadBytes: { env: 'SLUICE_MAX_UPLOAD_BYTES', doc: 'largest artifact upload', default: () => 256 * 1024 * 1024, parse: int(1024, 2 ** 31 - 1) },
  importModels: { env: 'SLUICE_IMPORT_MODELS', doc: 'import the model repository directory into the registry at start', default: () => true, parse: bool },
  adminKey: { env: 'SLUICE_ADMIN_KEY', doc: 'admin API key to install', secret: true, default: () => undefined, parse: optional(text) },
  authMode: { env: 'SLUICE_AUTH', doc: 'whether predict/feedback need a key', default: () => 'auto', parse: oneOf('auto', 'always', 'never') },
  reconcileMs: { env: 'SLUICE_REGISTRY_RECONCILE_MS', doc: 'periodic registry reconcile', default: () => 5_000, parse: int(100, 3_600_000) },
  decisionsBuffer: { env: 'SLUICE_DECISIONS_BUFFER', doc: 'decisions buffered for the database at most (then dropped, counted)', default: () => 50_000, parse: int(1, 10_000_000) },
  decisionsBatchSize: { env: 'SLUICE_DECISIONS_BATCH_SIZE', doc: 'decisions per INSERT at most', default: () => 5_000, parse: int(1, 5_000) },
  decisionsFlushMs: { env: 'SLUICE_DECISIONS_FLUSH_MS', doc: 'longest a decision waits before its batch is written (ms)', default: () => 100, parse: int(1, 60_000) },
  feedbackJoinWindowMs: { env: 'SLUICE_FEEDBACK_JOIN_WINDOW_MS', doc: 'feedback later than this after its decision is refused (ms; default 7 days)', default: () => 7 * 24 * 3_600_000, parse: int(1, 366 * 24 * 3_600_000) },
  feedbackBatchSize: { env: 'SLUICE_FEEDBACK_BATCH_SIZE', doc: 'feedback events per database transaction at most', default: () => 1_000, parse: int(1, 4_000) },
  feedbackFlushMs: { env: 'SLUICE_FEEDBACK_FLUSH_MS', doc: 'longest a feedback event waits for its batch to start (ms)', default: () => 2, parse: int(0, 10_000) },
  feedbackConcurrency: { env: 'SLUICE_FEEDBACK_CONCURRENCY', doc: 'feedback batches in flight at once, each its own transaction (one is looked up while another commits)', default: () => 2, parse: int(1, 16) },
  feedbackMaxBatch: { env: 'SLUICE_FEEDBACK_MAX_BATCH', doc: 'events per POST /v1/feedback body at most', default: () => 1_000, parse: int(1, 100_000) },
  replicaId: { env: 'SLUICE_REPLICA_ID', doc: 'this replica\'s name among those sharing the database (default: host name and process id)', default: () => `${hostname()}-${process.pid}`, parse: replicaName },
  learnerSyncMs: { env: 'SLUICE_LEARNER_SYNC_MS', doc: 'how often online learners exchange state deltas with other replicas (ms)', default: () => 1_000, parse: int(10, 3_600_000) },
  checkpointIntervalMs: { env: 'SLUICE_CHECKPOINT_INTERVAL_MS', doc: 'how often learned state is checkpointed to the artifact store (ms; also at unload and shutdown)', default: () => 60_000, parse: int(100, 86_400_000) },
  experimentIntervalMs: { env: 'SLUICE_EXPERIMENT_INTERVAL_MS', doc: 'how often running experiments are analysed, and may stop for a winner, futility or harm (ms)', default: () => 5_000, parse: int(50, 3_600_000) },
  deploymentIntervalMs: { env: 'SLUICE_DEPLOYMENT_INTERVAL_MS', doc: 'how often deployments in progress are judged, and may step, roll back or promote (ms)', default: () => 1_000, parse: int(50, 3_600_000) },
  alertIntervalMs: { env: 'SLUICE_ALERT_INTERVAL_MS', doc: 'how often alert rules are evaluated (ms; one replica at a time)', default: () => 10_000, parse: int(50, 3_600_000) },
  alertWebhooks: { env: 'SLUICE_ALERT_WEBHOOKS', doc: 'comma-separated webhook URLs alert notices are POSTed to (Slack-compatible JSON)', secret: true, default: () => [], parse: urlList },
  performanceIntervalMs: { env: 'SLUICE_PERFORMANCE_INTERVAL_MS', doc: 'how often each served, registered version gets a model_performance row in the registry: requests, p50/p95/p99 and error rate over the interval, process CPU and memory (ms)', default: () => 60_000, parse: int(50, 86_400_000) },
  latencySloMs: { env: 'SLUICE_LATENCY_SLO_MS', doc: 'the p99 latency objective (ms) the built-in alert p99-above-slo compares each version with', default: () => 10, parse: int(1, 600_000) },
  dashboardIntervalMs: { env: 'SLUICE_DASHBOARD_INTERVAL_MS', doc: 'how often the dashboard snapshot is rebuilt and streamed while at least one viewer is connected (ms; nothing is computed while none is)', default: () => 1_000, parse: int(100, 60_000) },
  dashboardMaxViewers: { env: 'SLUICE_DASHBOARD_MAX_VIEWERS', doc: 'live dashboard streams open at once on the whole server; one more is refused with DASHBOARD_FULL', default: () => 16, parse: int(1, 1_000) },
  retrainWebhooks: { env: 'SLUICE_RETRAIN_WEBHOOKS', doc: 'comma-separated webhook URLs retraining requests are POSTed to (JSON)', secret: true, default: () => [], parse: urlList },
  retrainCooldownMs: { env: 'SLUICE_RETRAIN_COOLDOWN_MS', doc: 'an automatic retraining trigger (performance, drift, schedule) does not repeat for a model within this (ms)', default: () => 3_600_000, parse: int(0, 366 * 86_400_000) },
  retrainIntervalMs: { env: 'SLUICE_RETRAIN_INTERVAL_MS', doc: 'how often retraining schedules are checked (ms)', default: () => 60_000, parse: int(50, 86_400_000) },
  driftSampleRate: { env: 'SLUICE_DRIFT_SAMPLE_RATE', doc: 'share of each version\'s requests whose input rows and predictions are sampled for drift and data-quality monitoring (0 = off)', default: () => 0.01, parse: ratio },
  driftReferenceRows: { env: 'SLUICE_DRIFT_REFERENCE_ROWS', doc: 'sampled rows of a version that form its drift reference (its first ones); also the size of the recent sample compared with it', default: () => 1_000, parse: int(50, 100_000) },
  driftWindowMs: { env: 'SLUICE_DRIFT_WINDOW_MS', doc: 'how often the recent drift sample of a version restarts (ms)', default: () => 60_000, parse: int(100, 86_400_000) },
};

/** Reads the configuration: overrides (other than undefined) win over the environment, which wins over defaults. */
export function loadConfig(overrides: Partial<Config> = {}, env: Env = process.env): Readonly<Config> {
  const out: Partial<Config> = {};
  for (const key of Object.keys(schema) as Array<keyof Config>) {
    const f = schema[key] as Field<unknown>;
    const raw = env[f.env];
    let value: unknown;
    try {
      // An override of `undefined` means "not overridden".
      value = overrides[key] !== undefined ? overrides[key] : raw !== undefined ? f.parse(raw, f.env) : f.default();
    } catch (e) {
      // A secret's value must not reach logs through the error message.
      if (f.secret) throw invalid(f.env, 'is invalid (value not shown: secret)');
      throw e;
    }
    (out as Record<string, unknown>)[key] = value;
  }
  return Object.freeze(out as Config);
}
