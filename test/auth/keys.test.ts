import * as crypto from 'node:crypto';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';

// Log everything (to a capture) so the tests can check that no secret is ever written.
const logs = vi.hoisted(() => {
  process.env.SLUICE_LOG_LEVEL = 'debug';
  return [] as string[];
});
// A pass-through spy: the real timingSafeEqual runs; the test only sees that it was used.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

import { ApiKeys, generateSecret, type CreatedKey } from '../../src/auth/keys.js';
import { requireScope } from '../../src/auth/policy.js';
import { describeEachDb, type TestDb } from '../helpers/services.js';

// File-level, so the capture is live for every backend's run of both suites: describeEachDb
// collects all bodies first, so a spy made in a body and restored by that run's afterAll would
// leave the later (PostgreSQL) runs checking stale logs.
beforeAll(() => {
  const writeSpy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    logs.push(String(chunk));
    return true;
  });
  return () => writeSpy.mockRestore(); // the file-level teardown
});

describeEachDb('API keys', (backend) => {
  let t: TestDb;
  let keys: ApiKeys;
  let logsBefore: number; // where this backend's run starts in the shared capture

  beforeAll(async () => {
    logsBefore = logs.length;
    t = await backend.open();
    keys = new ApiKeys(t.db, { missRefreshMs: 0 });
    await keys.start();
  });
  afterAll(async () => {
    await keys?.stop();
    await t?.cleanup();
  });

  const secrets: string[] = [];
  const remember = (k: CreatedKey): CreatedKey => {
    secrets.push(k.secret);
    return k;
  };

  it('creates random high-entropy keys and stores only their hash', async () => {
    const k = remember(await keys.create('ci-predict', ['predict'], 'test'));
    expect(k.secret).toMatch(/^sk_[A-Za-z0-9_-]{43}$/);
    expect(k).toMatchObject({ name: 'ci-predict', scopes: ['predict'] });
    expect(generateSecret()).not.toBe(generateSecret());
    // Nothing in the table contains the secret, or any long piece of it.
    const dump = JSON.stringify(await t.db.query('SELECT * FROM api_keys'));
    expect(dump).not.toContain(k.secret);
    expect(dump).not.toContain(k.secret.slice(3, 20));
    const [row] = await t.db.query<{ key_hash: string }>('SELECT key_hash FROM api_keys WHERE name = $1', ['ci-predict']);
    expect(row!.key_hash).toBe(crypto.createHash('sha256').update(k.secret).digest('hex'));
    expect((await keys.list()).find((r) => r.name === 'ci-predict')).toMatchObject({ scopes: ['predict'], createdBy: 'test', revokedAt: null });
  });

  it('verifies a key in constant time, and knows nothing of wrong, empty or revoked ones', async () => {
    const k = remember(await keys.create('verify-me', ['feedback', 'predict'], 'test'));
    const tse = vi.mocked(crypto.timingSafeEqual);
    tse.mockClear();
    expect(await keys.verify(k.secret)).toEqual({ name: 'verify-me', scopes: ['feedback', 'predict'] });
    expect(tse).toHaveBeenCalledTimes(1);
    const [a, b] = tse.mock.calls[0]!;
    expect([(a as Buffer).length, (b as Buffer).length]).toEqual([32, 32]);
    const flipped = k.secret.slice(0, -1) + (k.secret.endsWith('A') ? 'B' : 'A');
    for (const wrong of [flipped, k.secret + 'x', k.secret.slice(0, -1), '', undefined, 'x'.repeat(10_000)]) {
      expect(await keys.verify(wrong), String(wrong).slice(0, 20)).toBeUndefined();
    }
    expect(await keys.revoke('verify-me')).toBe(true);
    expect(await keys.verify(k.secret)).toBeUndefined();
    expect(await keys.revoke('verify-me')).toBe(false);
  });

  it('sees keys created by another replica (through a refresh on a miss)', async () => {
    const other = new ApiKeys(t.db);
    const k = remember(await other.create('from-elsewhere', ['predict'], 'test'));
    expect(await keys.verify(k.secret)).toEqual({ name: 'from-elsewhere', scopes: ['predict'] });
  });

  it('checks scopes: UNAUTHENTICATED without a valid key, PERMISSION_DENIED without the scope', async () => {
    const p = remember(await keys.create('only-predict', ['predict'], 'test'));
    const a = remember(await keys.create('an-admin', ['admin'], 'test'));
    await expect(requireScope(keys, p.secret, 'predict')).resolves.toEqual({ name: 'only-predict', scopes: ['predict'] });
    await expect(requireScope(keys, p.secret, 'admin')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(requireScope(keys, p.secret, 'feedback')).rejects.toMatchObject({ code: 'PERMISSION_DENIED' });
    await expect(requireScope(keys, undefined, 'predict')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(requireScope(keys, 'sk_nope', 'predict')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    // admin includes the others.
    await expect(requireScope(keys, a.secret, 'feedback')).resolves.toMatchObject({ name: 'an-admin' });
    const err = (await requireScope(keys, p.secret, 'admin').catch((e: unknown) => e)) as Error;
    expect(err.message).not.toContain(p.secret);
  });

  it('refuses bad names, bad scopes and duplicate names', async () => {
    await expect(keys.create("x'); DROP TABLE api_keys;--", ['predict'], 'test')).rejects.toMatchObject({ code: 'NAME_INVALID' });
    await expect(keys.revoke('a\u0000b')).rejects.toMatchObject({ code: 'NAME_INVALID' });
    await expect(keys.create('no-scopes', [], 'test')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(keys.create('bad-scope', ['root' as never], 'test')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    remember(await keys.create('twice', ['predict'], 'test'));
    await expect(keys.create('twice', ['predict'], 'test')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await t.db.query('SELECT 1 FROM api_keys LIMIT 1')).toHaveLength(1);
  });

  it('never writes a secret to the logs', () => {
    expect(logs.length).toBeGreaterThan(logsBefore); // the capture works in this run: key changes are logged
    const all = logs.join('');
    for (const s of secrets) expect(all).not.toContain(s);
  });
});

describeEachDb('admin key bootstrap', (backend) => {
  let t: TestDb;
  beforeAll(async () => {
    t = await backend.open();
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it('creates an admin key on the first start only, and returns its secret once', async () => {
    const keys = new ApiKeys(t.db);
    const first = await keys.bootstrap(undefined);
    expect(first).toMatchObject({ name: 'admin', scopes: ['admin'], secret: expect.stringMatching(/^sk_/) });
    expect(await new ApiKeys(t.db).bootstrap(undefined)).toBeUndefined();
    expect(await keys.bootstrap(undefined)).toBeUndefined();
    await expect(requireScope(keys, first!.secret, 'admin')).resolves.toMatchObject({ name: 'admin' });
    expect(logs.join('')).not.toContain(first!.secret);
    // Once revoked, the next start makes a new one (under a new name: the old row stays).
    await keys.revoke('admin');
    const again = await keys.bootstrap(undefined);
    expect(again?.name).toMatch(/^admin-\d+$/);
    expect(again?.secret).not.toBe(first!.secret);
  });

  it('installs SLUICE_ADMIN_KEY instead, replacing the generated one, and prints nothing', async () => {
    const keys = new ApiKeys(t.db);
    const configured = `my-own-admin-key-${'z'.repeat(32)}`;
    expect(await keys.bootstrap(configured)).toBeUndefined();
    await expect(requireScope(keys, configured, 'admin')).resolves.toEqual({ name: 'admin', scopes: ['admin'] });
    expect(await keys.bootstrap(configured)).toBeUndefined(); // idempotent
    expect((await t.db.query("SELECT 1 FROM api_keys WHERE name = 'admin'"))).toHaveLength(1);
    expect(JSON.stringify(await t.db.query('SELECT * FROM api_keys'))).not.toContain(configured);
    // A different configured key takes over; the previous one stops working.
    const next = `another-admin-key-${'y'.repeat(32)}`;
    await keys.bootstrap(next);
    await expect(requireScope(keys, next, 'admin')).resolves.toMatchObject({ name: 'admin' });
    await expect(requireScope(keys, configured, 'admin')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    // Too short to be safe under a fast hash: refused, without echoing it.
    const err = (await keys.bootstrap('short-key').catch((e: unknown) => e)) as Error & { code: string };
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    expect(err.message).not.toContain('short-key');
    expect(logs.join('')).not.toContain(configured);
    expect(logs.join('')).not.toContain(next);
  });
});
