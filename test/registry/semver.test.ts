import { describe, expect, it } from 'vitest';
import { compareSemver, latestSemver, nextVersion, parseSemver } from '../../src/registry/semver.js';

describe('semantic versions', () => {
  it('parses full, short and pre-release versions, and refuses the rest', () => {
    expect(parseSemver('1.2.3')).toEqual({ major: 1, minor: 2, patch: 3, pre: [] });
    expect(parseSemver('2')).toEqual({ major: 2, minor: 0, patch: 0, pre: [] });
    expect(parseSemver('v1.4')).toEqual({ major: 1, minor: 4, patch: 0, pre: [] });
    expect(parseSemver('1.0.0-rc.1+build.5')).toEqual({ major: 1, minor: 0, patch: 0, pre: ['rc', '1'] });
    for (const bad of ['', 'x', '01.2.3', '1.2.3.4', '1..2', '1.0.0-', 'nightly']) expect(parseSemver(bad), bad).toBeUndefined();
  });

  it('orders by SemVer precedence', () => {
    const sorted = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.10.0', '2.0.0'];
    const shuffled = [...sorted].reverse();
    expect(shuffled.sort((a, b) => compareSemver(parseSemver(a)!, parseSemver(b)!))).toEqual(sorted);
    expect(latestSemver(['1.9.0', '1.10.0', 'nightly', '1.2'])).toEqual({ major: 1, minor: 10, patch: 0, pre: [] });
  });

  it('bumps from the latest version, 1.0.0 for the first', () => {
    expect(nextVersion([], 'minor')).toBe('1.0.0');
    expect(nextVersion(['not-semver'], 'patch')).toBe('1.0.0');
    expect(nextVersion(['1.2.3', '0.9.9'], 'patch')).toBe('1.2.4');
    expect(nextVersion(['1.2.3'], 'minor')).toBe('1.3.0');
    expect(nextVersion(['1.2.3'], 'major')).toBe('2.0.0');
    expect(nextVersion(['1', '2', '3'], 'minor')).toBe('3.1.0');
    // A pre-release bumps to its release.
    expect(nextVersion(['2.0.0-rc.1'], 'major')).toBe('2.0.0');
    expect(nextVersion(['1.3.0-rc.1'], 'minor')).toBe('1.3.0');
    expect(nextVersion(['1.2.4-rc.1'], 'patch')).toBe('1.2.4');
    expect(() => nextVersion([], 'huge' as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
