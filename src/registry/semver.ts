/**
 * Semantic versions for automatic bumps: `major|minor|patch` from a model's latest registered
 * version, `1.0.0` for the first. Versions registered explicitly may be anything the manifest's
 * The naming rule (src/names.ts) allows ("1", "2024-06-01"); only those that read as semver count for bumps,
 * with missing parts read as 0 ("2" is 2.0.0), so a repository imported with versions 1, 2, 3
 * bumps to 4.0.0 / 3.1.0 / 3.0.1.
 */
import { SluiceError } from '../errors.js';

export type Bump = 'major' | 'minor' | 'patch';
export const BUMPS: readonly Bump[] = ['major', 'minor', 'patch'];

/** Throws INVALID_ARGUMENT unless `bump` is one of BUMPS. */
export function checkBump(bump: unknown): asserts bump is Bump {
  if (!BUMPS.includes(bump as Bump)) throw new SluiceError('INVALID_ARGUMENT', 'bump must be major, minor or patch');
}

export interface SemVer {
  major: number;
  minor: number;
  patch: number;
  /** Pre-release identifiers ("rc.1"), empty for a release. */
  pre: string[];
}

const SEMVER = /^v?(0|[1-9]\d{0,8})(?:\.(0|[1-9]\d{0,8}))?(?:\.(0|[1-9]\d{0,8}))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseSemver(v: string): SemVer | undefined {
  const m = SEMVER.exec(v);
  if (!m) return undefined;
  const pre = m[4] === undefined ? [] : m[4].split('.');
  if (pre.some((p) => p === '')) return undefined;
  return { major: Number(m[1]), minor: Number(m[2] ?? 0), patch: Number(m[3] ?? 0), pre };
}

/** SemVer 2.0 precedence (build metadata ignored). */
export function compareSemver(a: SemVer, b: SemVer): number {
  for (const k of ['major', 'minor', 'patch'] as const) if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length; // a release outranks its pre-releases
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      if (Number(x) !== Number(y)) return Number(x) < Number(y) ? -1 : 1;
    } else if (nx !== ny) {
      return nx ? -1 : 1;
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

/** The highest of `versions` that reads as semver, or undefined. */
export function latestSemver(versions: Iterable<string>): SemVer | undefined {
  let best: SemVer | undefined;
  for (const v of versions) {
    const s = parseSemver(v);
    if (s && (!best || compareSemver(s, best) > 0)) best = s;
  }
  return best;
}

export function formatSemver(s: SemVer): string {
  return `${s.major}.${s.minor}.${s.patch}${s.pre.length ? `-${s.pre.join('.')}` : ''}`;
}

/** The next version after the latest of `existing` (a pre-release bumps to its release). */
export function nextVersion(existing: Iterable<string>, bump: Bump): string {
  checkBump(bump);
  const latest = latestSemver(existing);
  if (!latest) return '1.0.0';
  const { major, minor, patch, pre } = latest;
  if (bump === 'major') return formatSemver({ major: pre.length && minor === 0 && patch === 0 ? major : major + 1, minor: 0, patch: 0, pre: [] });
  if (bump === 'minor') return formatSemver({ major, minor: pre.length && patch === 0 ? minor : minor + 1, patch: 0, pre: [] });
  return formatSemver({ major, minor, patch: pre.length ? patch : patch + 1, pre: [] });
}
