/** Route specs (src/routing/route.ts): every bad input is ROUTE_INVALID naming its field. */
import { describe, expect, it } from 'vitest';
import { SluiceError } from '../../src/errors.js';
import { MAX_SALT_LENGTH, MAX_SHADOWS, MAX_VARIANTS, parseRoute, routeJson, routeVersions, sameRoute } from '../../src/routing/route.js';

const good = () => ({
  variants: [{ name: 'a', version: '1.0.0', weight: 0.9 }, { name: 'b', version: '2.0.0', weight: 0.1 }],
  assignment: 'hash',
});

function refused(body: unknown, field: RegExp | string): void {
  let err: unknown;
  try {
    parseRoute(body, 'm');
  } catch (e) {
    err = e;
  }
  expect(err, `${JSON.stringify(body)} must be refused`).toBeInstanceOf(SluiceError);
  expect((err as SluiceError).code).toBe('ROUTE_INVALID');
  expect((err as SluiceError).httpStatus).toBe(400);
  expect((err as SluiceError).message).toMatch(field);
}

describe('parseRoute', () => {
  it('reads the API JSON: defaults salt to the model, shadows to none, log_features to false; frozen', () => {
    const r = parseRoute(good(), 'fraud');
    expect(r).toEqual({
      variants: [{ name: 'a', version: '1.0.0', weight: 0.9 }, { name: 'b', version: '2.0.0', weight: 0.1 }],
      assignment: 'hash', salt: 'fraud', shadows: [], logFeatures: false,
    });
    expect(Object.isFrozen(r) && Object.isFrozen(r.variants) && Object.isFrozen(r.variants[0]) && Object.isFrozen(r.shadows)).toBe(true);
    const full = parseRoute({ ...good(), assignment: 'random', salt: 'exp-7', shadows: [{ version: '3.0.0', fraction: 0.5 }, { version: '4', fraction: 1 }], log_features: true }, 'fraud');
    expect(full).toMatchObject({ assignment: 'random', salt: 'exp-7', shadows: [{ version: '3.0.0', fraction: 0.5 }, { version: '4', fraction: 1 }], logFeatures: true });
  });

  it('normalises weights to sum 1, and its own JSON parses back to exactly the same route', () => {
    const r = parseRoute({ variants: [{ name: 'a', version: '1', weight: 3 }, { name: 'b', version: '2', weight: 1 }, { name: 'c', version: '2', weight: 6 }], assignment: 'hash' }, 'm');
    expect(r.variants.map((v) => v.weight)).toEqual([0.3, 0.1, 0.6]);
    for (const weights of [[1, 1, 1], [0.7, 0.2, 0.1], [1, 2, 3, 4, 5, 6, 7], [1e-9, 1]]) {
      const spec = parseRoute({ variants: weights.map((weight, i) => ({ name: `v${i}`, version: '1', weight })), assignment: 'hash' }, 'm');
      expect(spec.variants.reduce((a, v) => a + v.weight, 0)).toBeCloseTo(1, 12);
      const again = parseRoute(JSON.parse(JSON.stringify(routeJson(spec))), 'm');
      expect(again).toEqual(spec);
      expect(sameRoute(again, spec)).toBe(true);
    }
  });

  it('routeJson is the snake_case API form; routeVersions lists variants then shadows, each once', () => {
    const r = parseRoute({ ...good(), variants: [...good().variants, { name: 'c', version: '1.0.0', weight: 1 }], shadows: [{ version: '3', fraction: 0.25 }, { version: '2.0.0', fraction: 0.5 }], log_features: true }, 'm');
    expect(routeJson(r)).toEqual({
      variants: [{ name: 'a', version: '1.0.0', weight: 0.45 }, { name: 'b', version: '2.0.0', weight: 0.05 }, { name: 'c', version: '1.0.0', weight: 0.5 }],
      assignment: 'hash', salt: 'm', shadows: [{ version: '3', fraction: 0.25 }, { version: '2.0.0', fraction: 0.5 }], log_features: true,
    });
    expect(routeVersions(r)).toEqual(['1.0.0', '2.0.0', '3']);
  });

  it('refuses a body that is not an object, or has unknown fields', () => {
    for (const body of [null, undefined, 7, 'route', [good()]]) refused(body, /^route must be a JSON object$/);
    refused({ ...good(), varaints: [] }, /route has an unknown field "varaints"/);
    refused(JSON.parse('{"variants":[{"name":"a","version":"1","weight":1}],"assignment":"hash","__proto__":{"x":1}}'), /unknown field "__proto__"/);
  });

  it('refuses bad variants, naming the variant and field', () => {
    refused({ assignment: 'hash' }, /^variants is required/);
    refused({ ...good(), variants: {} }, /^variants must be a list/);
    refused({ ...good(), variants: [] }, /^variants must have 1 to 64 entries, not 0/);
    refused({ ...good(), variants: Array.from({ length: MAX_VARIANTS + 1 }, (_, i) => ({ name: `v${i}`, version: '1', weight: 1 })) }, /^variants must have 1 to 64 entries, not 65/);
    refused({ ...good(), variants: ['a'] }, /^variants\[0\] must be a JSON object/);
    refused({ ...good(), variants: [{ name: 'a', version: '1', weight: 1, extra: 1 }] }, /^variants\[0\] has an unknown field "extra"/);
    refused({ ...good(), variants: [{ version: '1', weight: 1 }] }, /^variants\[0\]\.name must be 1-128 characters/);
    refused({ ...good(), variants: [good().variants[0], { name: 'b/c', version: '1', weight: 1 }] }, /^variants\[1\]\.name must be/);
    refused({ ...good(), variants: [{ name: 'a', version: '1', weight: 1 }, { name: 'a', version: '2', weight: 1 }] }, /^variants\[1\]\.name "a" repeats variants\[0\]\.name/);
    refused({ ...good(), variants: [{ name: 'a', weight: 1 }] }, /^variants\[0\]\.version must be/);
    refused({ ...good(), variants: [{ name: 'a', version: "1'; DROP TABLE routes;--", weight: 1 }] }, /^variants\[0\]\.version must be/);
    refused({ ...good(), variants: [{ name: 'a', version: 'x'.repeat(129), weight: 1 }] }, /^variants\[0\]\.version must be/);
    for (const weight of [0, -1, '0.5', null, undefined, Infinity, NaN, true]) {
      refused({ ...good(), variants: [{ name: 'a', version: '1', weight }] }, /^variants\[0\]\.weight must be a finite number > 0$/);
    }
    refused({ ...good(), variants: [{ name: 'a', version: '1', weight: 1e308 }, { name: 'b', version: '1', weight: 1e308 }] }, /^variants: the weights must sum to a finite number/);
  });

  it('refuses a bad assignment, salt or log_features', () => {
    for (const assignment of [undefined, 'sticky', 'HASH', 1, null]) refused({ ...good(), assignment }, /^assignment must be "hash" .*, "random" .* or "bandit"/);
    for (const salt of ['', 5, null, 'x'.repeat(MAX_SALT_LENGTH + 1)]) refused({ ...good(), salt }, /^salt must be a string of 1 to 256 characters/);
    refused({ ...good(), salt: 'a\u0000b' }, /^salt must not contain NUL/);
    for (const log_features of ['true', 1, null]) refused({ ...good(), log_features }, /^log_features must be true or false/);
  });

  it('refuses bad shadows, naming the shadow and field', () => {
    refused({ ...good(), shadows: { version: '3', fraction: 0.5 } }, /^shadows must be a list/);
    refused({ ...good(), shadows: Array.from({ length: MAX_SHADOWS + 1 }, (_, i) => ({ version: `${i}`, fraction: 0.1 })) }, /^shadows must have 0 to 16 entries, not 17/);
    refused({ ...good(), shadows: [5] }, /^shadows\[0\] must be a JSON object/);
    refused({ ...good(), shadows: [{ version: '3', fraction: 0.5, name: 'x' }] }, /^shadows\[0\] has an unknown field "name"/);
    refused({ ...good(), shadows: [{ fraction: 0.5 }] }, /^shadows\[0\]\.version must be/);
    refused({ ...good(), shadows: [{ version: '3', fraction: 0.5 }, { version: '3', fraction: 0.1 }] }, /^shadows\[1\]\.version "3" repeats shadows\[0\]\.version/);
    refused({ ...good(), shadows: [{ version: '3' }] }, /^shadows\[0\]\.fraction is required/);
    for (const fraction of [0, -0.1, 1.0001, 2, '0.5', null, NaN, Infinity]) {
      refused({ ...good(), shadows: [{ version: '3', fraction }] }, /^shadows\[0\]\.fraction must be a finite number > 0 and <= 1$/);
    }
  });

  it('checks the model name it is given (NAME_INVALID: not part of the route body)', () => {
    expect(() => parseRoute(good(), 'a/b')).toThrow(expect.objectContaining({ code: 'NAME_INVALID' }));
  });
});
