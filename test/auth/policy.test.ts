import { describe, expect, it } from 'vitest';
import { authorize, isLoopback, keyFromHeaders, needsKey } from '../../src/auth/policy.js';
import { allows } from '../../src/auth/scopes.js';

describe('who needs a key', () => {
  it('tells loopback listen addresses from the rest', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1', 'LOCALHOST']) expect(isLoopback(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.1', 'example.com', '::ffff:10.0.0.1', '128.0.0.1', '']) expect(isLoopback(h), h).toBe(false);
  });

  it('always requires one for admin; for predict/feedback follows the auth mode', () => {
    for (const mode of ['auto', 'always', 'never'] as const) {
      for (const host of ['127.0.0.1', '0.0.0.0']) expect(needsKey('admin', { authMode: mode }, host)).toBe(true);
    }
    for (const scope of ['predict', 'feedback'] as const) {
      expect(needsKey(scope, { authMode: 'auto' }, '127.0.0.1')).toBe(false);
      expect(needsKey(scope, { authMode: 'auto' }, '0.0.0.0')).toBe(true);
      expect(needsKey(scope, { authMode: 'always' }, '127.0.0.1')).toBe(true);
      expect(needsKey(scope, { authMode: 'never' }, '0.0.0.0')).toBe(false);
    }
  });

  it('maps missing keys to UNAUTHENTICATED and missing scopes to PERMISSION_DENIED', () => {
    expect(() => authorize(undefined, 'predict')).toThrow(expect.objectContaining({ code: 'UNAUTHENTICATED', httpStatus: 401 }));
    expect(() => authorize({ name: 'p', scopes: ['predict'] }, 'admin')).toThrow(expect.objectContaining({ code: 'PERMISSION_DENIED', httpStatus: 403 }));
    expect(authorize({ name: 'a', scopes: ['admin'] }, 'predict')).toEqual({ name: 'a', scopes: ['admin'] });
    expect(allows(['feedback'], 'predict')).toBe(false);
  });

  it('reads the key from Authorization: Bearer or X-API-Key', () => {
    expect(keyFromHeaders('Bearer sk_abc')).toBe('sk_abc');
    expect(keyFromHeaders('bearer   sk_abc  ')).toBe('sk_abc');
    expect(keyFromHeaders('Basic dXNlcjpwYXNz', 'sk_h')).toBe('sk_h');
    expect(keyFromHeaders(undefined, ' sk_h ')).toBe('sk_h');
    expect(keyFromHeaders(undefined, '')).toBeUndefined();
    expect(keyFromHeaders('Bearer a b')).toBeUndefined();
  });
});
