/**
 * Schema migrations: plain SQL files `NNN_name.sql` in src/registry/migrations, applied in
 * order, each in its own transaction together with its row in `schema_migrations`, so a failed
 * migration leaves nothing half-applied. Identical on PGlite and PostgreSQL.
 *
 * The files are read from the source tree through `projectRoot` (the build is plain `tsc`, which
 * does not copy .sql files), so tests (src/) and the built server (dist/src/) read the same ones.
 *
 * Several replicas may start at once on one PostgreSQL: a transaction-scoped advisory lock makes
 * them take turns, and each re-checks what is applied once it holds the lock.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256Hex } from '../artifacts/integrity.js';
import { SluiceError } from '../errors.js';
import { log } from '../log.js';
import { projectRoot } from '../paths.js';
import type { Db } from './db.js';

export const MIGRATIONS_DIR = path.join(projectRoot, 'src', 'registry', 'migrations');

/** Arbitrary constant naming "the schema" among advisory locks. */
const MIGRATION_LOCK = 0x51_1c_e0_01;

export interface Migration {
  id: number;
  name: string;
  sql: string;
  sha256: string;
}

const FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** The migration files in order; refuses badly named files and duplicate numbers. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const out: Migration[] = [];
  for (const f of files) {
    const m = FILE.exec(f);
    if (!m) throw new SluiceError('INTERNAL', `migration file ${f} is not named NNN_name.sql`);
    const id = Number(m[1]);
    if (out.some((x) => x.id === id)) throw new SluiceError('INTERNAL', `two migrations numbered ${m[1]}`);
    const sql = await readFile(path.join(dir, f), 'utf8');
    out.push({ id, name: m[2]!, sql, sha256: sha256Hex(sql) });
  }
  return out;
}

/** Applies every migration not yet applied. Returns the ids it applied. */
export async function migrate(db: Db, migrations?: Migration[]): Promise<number[]> {
  const all = migrations ?? (await loadMigrations());
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      id integer PRIMARY KEY,
      name text NOT NULL,
      sha256 text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
  });
  const applied: number[] = [];
  for (const m of all) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      const rows = await tx.query<{ sha256: string }>('SELECT sha256 FROM schema_migrations WHERE id = $1', [m.id]);
      if (rows.length > 0) {
        if (rows[0]!.sha256 !== m.sha256) {
          // An applied migration was edited: the database will not follow. Say so, keep going.
          log.warn('registry: an applied migration file has changed since; add a new migration instead', { id: m.id, name: m.name });
        }
        return false;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (id, name, sha256) VALUES ($1, $2, $3)', [m.id, m.name, m.sha256]);
      return true;
    });
    if (done) {
      applied.push(m.id);
      log.info('registry: migration applied', { id: m.id, name: m.name });
    }
  }
  return applied;
}
