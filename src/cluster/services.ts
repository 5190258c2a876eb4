/**
 * The cluster's PostgreSQL and S3-compatible server, started the way CI starts them: with
 * scripts/ci/postgres.sh (a throw-away PostgreSQL cluster on a free loopback port) and
 * scripts/ci/s3.sh (moto in server mode), each in a directory of the cluster's own.
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { projectRoot } from '../paths.js';

const run = promisify(execFile);
const script = (name: string): string => path.join(projectRoot, 'scripts', 'ci', name);

/** moto accepts any credentials; these only have to match between the replicas. */
const S3_REGION = 'us-east-1';
const S3_ACCESS_KEY_ID = 'sluice-cluster';
const S3_SECRET_ACCESS_KEY = 'sluice-cluster-secret';
export const CLUSTER_BUCKET = 'sluice-cluster';

export interface ServicesOptions {
  /** PostgreSQL binaries (scripts/ci/postgres.sh's SLUICE_PG_BIN; its default when unset). */
  pgBin?: string;
  /** Where moto's virtualenv is kept between runs (s3.sh's SLUICE_MOTO_VENV). */
  motoVenv?: string;
}

export interface ClusterServices {
  databaseUrl: string;
  s3Endpoint: string;
  /** SLUICE_DATABASE_URL and SLUICE_S3_* for every replica. */
  replicaEnv: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * Where moto's virtualenv lives unless told: the one CI's services.sh made (its python is
 * $SLUICE_TEST_PYTHON), else one under the temp directory that later runs reuse (the first run
 * installs moto from PyPI, which takes a minute; the next ones start in seconds).
 */
export function defaultMotoVenv(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLUICE_MOTO_VENV) return env.SLUICE_MOTO_VENV;
  if (env.SLUICE_TEST_PYTHON) return path.dirname(path.dirname(env.SLUICE_TEST_PYTHON));
  return path.join(tmpdir(), 'sluice-moto-venv');
}

/**
 * Starts both in `dir` (which the postgres OS user must be able to reach when running as root:
 * the caller makes it mode 755) and makes the artifact bucket. On a failure, whatever started is
 * stopped before the error is thrown.
 */
export async function startServices(dir: string, o: ServicesOptions = {}): Promise<ClusterServices> {
  const pgDir = path.join(dir, 'pg');
  const s3Dir = path.join(dir, 's3');
  await mkdir(dir, { recursive: true });
  const env = {
    ...process.env,
    SLUICE_MOTO_VENV: o.motoVenv ?? defaultMotoVenv(),
    ...(o.pgBin ? { SLUICE_PG_BIN: o.pgBin } : {}),
  };
  const opts = { env, maxBuffer: 1 << 20, timeout: 600_000 };
  const stopPg = async (): Promise<void> => {
    await run('bash', [script('postgres.sh'), 'stop', pgDir], opts);
  };
  const stopS3 = async (): Promise<void> => {
    await run('bash', [script('s3.sh'), 'stop', s3Dir], opts);
  };
  // Both at once, as services.sh does: moto's first install is the slow part.
  const [pg, s3] = await Promise.allSettled([
    run('bash', [script('postgres.sh'), 'start', pgDir], opts),
    run('bash', [script('s3.sh'), 'start', s3Dir], opts),
  ]);
  const stop = async (): Promise<void> => {
    // Each is idempotent (a stopped or never-started one is a no-op); one failing must not keep the other running.
    const results = await Promise.allSettled([stopS3(), stopPg()]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };
  if (pg.status === 'rejected' || s3.status === 'rejected') {
    await stop().catch(() => undefined);
    const e = (pg.status === 'rejected' ? pg.reason : (s3 as PromiseRejectedResult).reason) as Error & { stderr?: string };
    throw new Error(`${pg.status === 'rejected' ? 'PostgreSQL' : 'S3 (moto)'} did not start: ${e.stderr?.trim() || e.message}`);
  }
  const databaseUrl = pg.value.stdout.trim();
  const s3Endpoint = s3.value.stdout.trim();
  try {
    const client = new S3Client({
      endpoint: s3Endpoint, region: S3_REGION, forcePathStyle: true,
      credentials: { accessKeyId: S3_ACCESS_KEY_ID, secretAccessKey: S3_SECRET_ACCESS_KEY },
    });
    try {
      await client.send(new CreateBucketCommand({ Bucket: CLUSTER_BUCKET }));
    } finally {
      client.destroy();
    }
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return {
    databaseUrl,
    s3Endpoint,
    replicaEnv: {
      SLUICE_DATABASE_URL: databaseUrl,
      SLUICE_S3_BUCKET: CLUSTER_BUCKET,
      SLUICE_S3_ENDPOINT: s3Endpoint,
      SLUICE_S3_REGION: S3_REGION,
      SLUICE_S3_ACCESS_KEY_ID: S3_ACCESS_KEY_ID,
      SLUICE_S3_SECRET_ACCESS_KEY: S3_SECRET_ACCESS_KEY,
    },
    stop,
  };
}
