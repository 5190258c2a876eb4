/**
 * Who needs a key for what, and the checks the front ends call.
 *   - admin always needs a key with the admin scope;
 *   - predict and feedback follow config.authMode: `always`, `never`, or `auto` (the default):
 *     a key is needed only when the server listens on a non-loopback address, so a laptop
 *     works without keys and anything reachable from the network does not.
 * Error messages never contain the key.
 */
import { isIP } from 'node:net';
import type { Config } from '../config/index.js';
import { SluiceError } from '../errors.js';
import type { ApiKeys, KeyInfo } from './keys.js';
import { allows, type Scope } from './scopes.js';

/** Whether `host` (a listen address) only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

export function needsKey(scope: Scope, config: Pick<Config, 'authMode'>, listenHost: string): boolean {
  if (scope === 'admin') return true;
  switch (config.authMode) {
    case 'always': return true;
    case 'never': return false;
    default: return !isLoopback(listenHost);
  }
}

/** Throws UNAUTHENTICATED without a (known) key, PERMISSION_DENIED without the scope. */
export function authorize(key: KeyInfo | undefined, scope: Scope): KeyInfo {
  if (!key) throw new SluiceError('UNAUTHENTICATED', 'a valid API key is required (Authorization: Bearer <key>)');
  if (!allows(key.scopes, scope)) throw new SluiceError('PERMISSION_DENIED', `API key "${key.name}" lacks the ${scope} scope`);
  return key;
}

/** Verifies `secret` and checks its scope in one step. */
export async function requireScope(keys: ApiKeys, secret: string | undefined, scope: Scope): Promise<KeyInfo> {
  return authorize(await keys.verify(secret), scope);
}

/**
 * The key a request carries: `Authorization: Bearer <key>`, else `X-API-Key: <key>` (header
 * values as the front end read them; undefined when absent).
 */
export function keyFromHeaders(authorization: string | undefined, apiKeyHeader?: string): string | undefined {
  if (authorization !== undefined) {
    const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization);
    if (m) return m[1];
  }
  const k = apiKeyHeader?.trim();
  return k ? k : undefined;
}
