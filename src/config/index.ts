/**
 * Configuration: one schema with defaults, read from SLUICE_* environment variables (and
 * programmatic overrides), checked once and frozen. Bad values stop start-up with CONFIG_INVALID
 * naming the variable.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { SluiceError } from '../errors.js';
import { bundledModels } from '../paths.js';

export interface Config {
  /** Directory of models in Triton layout: <root>/<name>/<version>/model.json. */
  modelRepository: string;
  /** Models to load at start: all in the repository, or a list of names. */
  startupModels: 'all' | 'none' | string[];
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
}

type Env = Record<string, string | undefined>;

interface Field<T> {
  env: string;
  doc: string;
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

const bool = (raw: string, name: string): boolean => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw invalid(name, `must be true or false, got "${raw}"`);
};

const dir = (raw: string): string => path.resolve(raw);

const modelList = (raw: string, name: string): Config['startupModels'] => {
  const v = raw.trim();
  if (v === 'all' || v === '*') return 'all';
  if (v === 'none' || v === '') return 'none';
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.some((n) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(n))) throw invalid(name, 'must be "all", "none" or a comma-separated list of model names');
  return names;
};

/** The schema: every setting, its variable, default and meaning (README lists the same). */
export const schema: { [K in keyof Config]: Field<Config[K]> } = {
  modelRepository: { env: 'SLUICE_MODEL_REPOSITORY', doc: 'model repository directory', default: () => bundledModels, parse: dir },
  startupModels: { env: 'SLUICE_MODELS', doc: 'models to load at start: all, none, or a comma list', default: () => 'all', parse: modelList },
  workers: { env: 'SLUICE_WORKERS', doc: 'pool worker threads (0 = all inline)', default: () => Math.max(1, availableParallelism() - 1), parse: int(0, 256) },
  arenaMb: { env: 'SLUICE_ARENA_MB', doc: 'shared tensor arena size in MiB', default: () => 64, parse: int(1, 16384) },
  allowFixtureModels: { env: 'SLUICE_ALLOW_FIXTURE_MODELS', doc: 'allow test-only fixture models', default: () => false, parse: bool },
  workerSpinUs: { env: 'SLUICE_WORKER_SPIN_US', doc: 'how long an idle pool worker polls for work before sleeping (us)', default: () => 200, parse: int(0, 1_000_000) },
  drainTimeoutMs: { env: 'SLUICE_DRAIN_TIMEOUT_MS', doc: 'how long shutdown waits for in-flight requests', default: () => 10_000, parse: int(0, 600_000) },
};

/** Reads the configuration: overrides win over the environment, which wins over defaults. */
export function loadConfig(overrides: Partial<Config> = {}, env: Env = process.env): Readonly<Config> {
  const out: Partial<Config> = {};
  for (const key of Object.keys(schema) as Array<keyof Config>) {
    const f = schema[key] as Field<unknown>;
    const raw = env[f.env];
    (out as Record<string, unknown>)[key] = key in overrides ? overrides[key] : raw !== undefined ? f.parse(raw, f.env) : f.default();
  }
  return Object.freeze(out as Config);
}
