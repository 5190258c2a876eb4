/**
 * API keys. A key is `sk_` + 32 random bytes in base64url (256 bits). The database keeps only
 * its SHA-256, a name and scopes; the secret is shown once, when created.
 *
 * Why a plain SHA-256 and not bcrypt/scrypt: slow hashes exist to protect low-entropy secrets
 * (passwords) from guessing after a leak. A 256-bit random token cannot be guessed whatever the
 * hash, and a fast hash keeps verification off the request's latency budget (it may run on
 * every predict request). Installed keys (SLUICE_ADMIN_KEY) must be long for the same reason.
 *
 * Verification looks the hash up in an in-memory table (refreshed from the database on a
 * notification, periodically, and at most once a second on a miss). Serving therefore keeps
 * authenticating with the last known keys while the database is unreachable.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256Hex } from '../artifacts/integrity.js';
import { SluiceError } from '../errors.js';
import { errorFields, log } from '../log.js';
import { sqlState, type Db, type Queryable } from '../registry/db.js';
import { isScope, SCOPES, type Scope } from './scopes.js';
import { checkName } from '../names.js';

export const KEYS_CHANNEL = 'sluice_keys';
/** Shortest installed (not generated) key accepted: ~190 bits even in base64. */
export const MIN_INSTALLED_KEY_LENGTH = 32;
export const BOOTSTRAP_ADMIN_NAME = 'admin';

/** What verify() returns: one frozen object per key, shared by every request that uses it. */
export interface KeyInfo {
  readonly name: string;
  readonly scopes: readonly Scope[];
}

export interface KeyRecord extends KeyInfo {
  createdBy: string;
  createdAt: Date;
  revokedAt: Date | null;
}

export interface CreatedKey extends KeyInfo {
  /** The secret: shown to the caller once, never stored, never logged. */
  secret: string;
}

export function generateSecret(): string {
  return `sk_${randomBytes(32).toString('base64url')}`;
}

/** What the database stores of a secret: its SHA-256 in lowercase hex. */
function hashOf(secret: string): string {
  return sha256Hex(secret);
}


function checkScopes(scopes: unknown): Scope[] {
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every(isScope)) {
    throw new SluiceError('INVALID_ARGUMENT', `scopes must be a non-empty list of ${SCOPES.join(', ')}`);
  }
  return [...new Set(scopes)].sort();
}

interface CachedKey {
  info: KeyInfo;
  hash: Buffer;
}

/** Tells every replica to re-read its keys; delivered only if the transaction commits. */
async function notifyKeys(tx: Queryable, name: string): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [KEYS_CHANNEL, name]);
}

async function insertKey(tx: Queryable, name: string, hash: string, scopes: readonly Scope[], createdBy: string): Promise<void> {
  await tx.query(
    'INSERT INTO api_keys (name, key_hash, scopes, created_by) VALUES ($1, $2, $3::jsonb, $4)',
    [name, hash, JSON.stringify(scopes), createdBy],
  );
  await notifyKeys(tx, name);
}

export interface ApiKeysOptions {
  /** How often the in-memory table is re-read without a notification. */
  refreshMs?: number;
  /** Least time between two refreshes caused by unknown keys (bounds the load they can cause). */
  missRefreshMs?: number;
}

export class ApiKeys {
  private table = new Map<string, CachedKey>();
  /** When the last refresh started, successful or not: what throttles refreshes on a miss. */
  private attemptedAt = 0;
  private refreshing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private readonly refreshMs: number;
  private readonly missRefreshMs: number;

  constructor(private readonly db: Db, opts: ApiKeysOptions = {}) {
    this.refreshMs = opts.refreshMs ?? 30_000;
    this.missRefreshMs = opts.missRefreshMs ?? 1_000;
  }

  /** Loads the table and follows changes (NOTIFY sluice_keys, plus a periodic refresh). */
  async start(): Promise<void> {
    this.unlisten = await this.db.listen(KEYS_CHANNEL, { onNotify: () => void this.refreshQuietly(), onListening: () => void this.refreshQuietly() });
    this.timer = setInterval(() => void this.refreshQuietly(), this.refreshMs);
    this.timer.unref();
    await this.refreshQuietly();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.unlisten?.().catch(() => undefined);
    await this.refreshing;
  }

  /** Re-reads the keys (REGISTRY_UNAVAILABLE when the database is down; the old table stays). */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      this.attemptedAt = Date.now();
      try {
        const rows = await this.db.query<{ name: string; key_hash: string; scopes: Scope[] }>(
          'SELECT name, key_hash, scopes FROM api_keys WHERE revoked_at IS NULL');
        const table = new Map<string, CachedKey>();
        for (const r of rows) {
          const info: KeyInfo = Object.freeze({ name: r.name, scopes: Object.freeze(r.scopes) });
          table.set(r.key_hash, { info, hash: Buffer.from(r.key_hash, 'hex') });
        }
        this.table = table;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async refreshQuietly(): Promise<void> {
    try {
      await this.refresh();
    } catch (e) {
      log.warn('auth: cannot refresh API keys; using the last known ones', errorFields(e));
    }
  }

  /**
   * The key's name and scopes, or undefined for a missing, unknown or revoked key. An unknown key
   * may have just been created on another replica: the table is re-read before saying no, unless
   * a refresh started less than `missRefreshMs` ago. Counting from the last attempt, not the last
   * success, is what keeps unknown keys from each waiting on the database while it is down.
   */
  async verify(secret: string | undefined): Promise<KeyInfo | undefined> {
    if (typeof secret !== 'string' || secret.length === 0 || secret.length > 512) return undefined;
    const hash = hashOf(secret);
    let found = this.lookup(hash);
    if (!found && Date.now() - this.attemptedAt >= this.missRefreshMs) {
      await this.refreshQuietly();
      found = this.lookup(hash);
    }
    return found;
  }

  private lookup(hash: string): KeyInfo | undefined {
    const candidate = this.table.get(hash);
    // Constant time where it matters: the lookup is keyed by the secret's SHA-256, so its timing
    // can say something about a digest at most, never about the secret (a 256-bit random one,
    // behind a preimage-resistant hash). The comparison below cannot fail (the map key is this
    // same digest); it stays constant-time so that it remains so if the keying ever changes.
    if (!candidate || !timingSafeEqual(candidate.hash, Buffer.from(hash, 'hex'))) return undefined;
    return candidate.info;
  }

  /** Creates a key with a new random secret, returned once. */
  async create(name: string, scopes: Scope[], createdBy: string): Promise<CreatedKey> {
    const n = checkName(name, 'key name');
    const s = checkScopes(scopes);
    const secret = generateSecret();
    try {
      await this.db.transaction((tx) => insertKey(tx, n, hashOf(secret), s, createdBy));
    } catch (e) {
      if (sqlState(e) === '23505') throw new SluiceError('INVALID_ARGUMENT', `an API key named ${n} already exists (or that secret is in use)`);
      throw e;
    }
    await this.refreshQuietly();
    return { name: n, scopes: s, secret };
  }

  /** Revokes a key by name (it stops working on every replica). Returns whether it existed. */
  async revoke(name: string): Promise<boolean> {
    checkName(name, 'key name');
    const rows = await this.db.transaction(async (tx) => {
      const r = await tx.query('UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING name', [name]);
      await notifyKeys(tx, name);
      return r;
    });
    await this.refreshQuietly();
    return rows.length > 0;
  }

  async list(): Promise<KeyRecord[]> {
    const rows = await this.db.query<{ name: string; scopes: Scope[]; created_by: string; created_at: Date; revoked_at: Date | null }>(
      'SELECT name, scopes, created_by, created_at, revoked_at FROM api_keys ORDER BY name');
    return rows.map((r) => ({ name: r.name, scopes: r.scopes, createdBy: r.created_by, createdAt: r.created_at, revokedAt: r.revoked_at }));
  }

  /**
   * First start: makes sure an admin key exists. With `adminKey` (SLUICE_ADMIN_KEY) it installs
   * that secret as the `admin` key (a previous `admin` key is revoked and renamed) and returns
   * nothing to print. Without it, when no usable admin key exists, it creates one and returns its secret
   * so the caller can print it ONCE; later starts return undefined. Replicas starting together
   * take turns on an advisory lock, so only one of them creates (and prints) a key.
   */
  async bootstrap(adminKey: string | undefined): Promise<CreatedKey | undefined> {
    if (adminKey !== undefined && adminKey.length < MIN_INSTALLED_KEY_LENGTH) {
      throw new SluiceError('CONFIG_INVALID', `SLUICE_ADMIN_KEY must be at least ${MIN_INSTALLED_KEY_LENGTH} characters (value not shown)`);
    }
    const created = await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [0x51_1c_e0_02]);
      if (adminKey !== undefined) {
        const hash = hashOf(adminKey);
        const existing = await tx.query<{ name: string; revoked_at: Date | null }>('SELECT name, revoked_at FROM api_keys WHERE key_hash = $1', [hash]);
        if (existing[0]) {
          if (existing[0].revoked_at === null) return undefined; // installed before
          // The configuration says this key is the admin key: it wins over an earlier revocation.
          await tx.query('UPDATE api_keys SET revoked_at = NULL WHERE key_hash = $1', [hash]);
          await notifyKeys(tx, BOOTSTRAP_ADMIN_NAME);
        } else {
          // A previous `admin` key (generated, or an older SLUICE_ADMIN_KEY) is revoked and renamed
          // (kept for the record); the configured one takes the name.
          await tx.query(
            `UPDATE api_keys SET name = name || '-replaced-' || $2, revoked_at = COALESCE(revoked_at, now()) WHERE name = $1`,
            [BOOTSTRAP_ADMIN_NAME, String(Date.now())],
          );
          await insertKey(tx, BOOTSTRAP_ADMIN_NAME, hash, ['admin'], 'SLUICE_ADMIN_KEY');
        }
        log.info('auth: installed the admin key from SLUICE_ADMIN_KEY', { name: BOOTSTRAP_ADMIN_NAME });
        return undefined;
      }
      const admins = await tx.query(`SELECT 1 FROM api_keys WHERE revoked_at IS NULL AND scopes ? 'admin'`);
      if (admins.length > 0) return undefined;
      const secret = generateSecret();
      // A revoked `admin` key keeps its row (and name); the new one gets a fresh name then.
      const taken = await tx.query('SELECT 1 FROM api_keys WHERE name = $1', [BOOTSTRAP_ADMIN_NAME]);
      const name = taken.length === 0 ? BOOTSTRAP_ADMIN_NAME : `${BOOTSTRAP_ADMIN_NAME}-${Date.now()}`;
      await insertKey(tx, name, hashOf(secret), ['admin'], 'bootstrap');
      log.info('auth: created the first admin API key (its secret is shown once, by the caller)', { name });
      return { name, scopes: ['admin'] as Scope[], secret };
    });
    await this.refreshQuietly();
    return created;
  }
}
