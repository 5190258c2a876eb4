/**
 * Private PostgreSQL and S3 servers for one scenario, started with the CI scripts
 * (scripts/ci/postgres.sh, scripts/ci/s3.sh) on free loopback ports, so a scenario can stop and
 * start its own without touching anyone else's.
 */
import { execFile } from 'node:child_process';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { projectRoot } from '../src/paths.js';
import { TcpProxy } from './tcp-proxy.js';

const run = promisify(execFile);
const script = (name: string) => path.join(projectRoot, 'scripts/ci', name);

export interface PrivatePostgres {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** A PostgreSQL cluster of its own in `dir` (which the postgres OS user must be able to reach). */
export async function startPostgres(dir: string): Promise<PrivatePostgres> {
  await chmod(dir, 0o755);
  const pgDir = path.join(dir, 'pg');
  const start = async () => (await run('bash', [script('postgres.sh'), 'start', pgDir], { maxBuffer: 1 << 20 })).stdout.trim();
  const url = await start();
  return {
    url,
    stop: async () => {
      await run('bash', [script('postgres.sh'), 'stop', pgDir]);
    },
    start: async () => {
      await start();
    },
  };
}

export interface PrivateS3 {
  /** Environment for Sluice: bucket, endpoint (through the proxy), credentials. */
  env: Record<string, string>;
  /** Cuts the network to S3 (the objects stay). */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export const S3_CREDENTIALS = { region: 'us-east-1', accessKeyId: 'sluice-chaos', secretAccessKey: 'sluice-chaos-secret' };

/**
 * Where moto's virtualenv is kept, so that only the first scenario installs it: $SLUICE_MOTO_VENV,
 * else the one scripts/ci/services.sh installed (its python is $SLUICE_TEST_PYTHON), else one
 * under the temp directory.
 */
function motoVenv(): string {
  const e = process.env;
  if (e.SLUICE_MOTO_VENV) return e.SLUICE_MOTO_VENV;
  if (e.SLUICE_TEST_PYTHON) return path.dirname(path.dirname(e.SLUICE_TEST_PYTHON));
  return path.join(tmpdir(), 'sluice-chaos-moto-venv');
}

/** moto in server mode, a bucket, and a cuttable proxy in front of it. */
export async function startS3(dir: string): Promise<PrivateS3> {
  const s3Dir = path.join(dir, 's3');
  const env = { ...process.env, SLUICE_MOTO_VENV: motoVenv() };
  const endpoint = (await run('bash', [script('s3.sh'), 'start', s3Dir], { env, maxBuffer: 1 << 20 })).stdout.trim();
  const bucket = 'sluice-chaos';
  const client = new S3Client({ endpoint, forcePathStyle: true, region: S3_CREDENTIALS.region, credentials: S3_CREDENTIALS });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  const u = new URL(endpoint);
  const proxy = new TcpProxy(u.hostname, Number(u.port));
  await proxy.up();
  return {
    env: {
      SLUICE_S3_BUCKET: bucket,
      SLUICE_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
      SLUICE_S3_REGION: S3_CREDENTIALS.region,
      SLUICE_S3_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      SLUICE_S3_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    },
    down: () => proxy.down(),
    up: () => proxy.up(),
    stop: async () => {
      await proxy.down();
      await run('bash', [script('s3.sh'), 'stop', s3Dir], { env });
    },
  };
}
