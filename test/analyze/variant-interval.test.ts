/**
 * One variant's confidence interval against scipy (Student t interval of a mean) and statsmodels
 * (Wilson score interval of a rate): test/fixtures/stats/variant-interval-reference.json, written
 * by scripts/stats/variant_interval_reference.py.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { meanInterval, wilsonInterval } from '../../src/analyze/variant-interval.js';
import { projectRoot } from '../../src/paths.js';

const ref = JSON.parse(readFileSync(path.join(projectRoot, 'test', 'fixtures', 'stats', 'variant-interval-reference.json'), 'utf8')) as {
  means: Array<{ n: number; mean: number; sd: number; alpha: number; ci: [number, number] }>;
  rates: Array<{ successes: number; n: number; alpha: number; ci: [number, number] }>;
};

function close(got: [number, number] | null, want: [number, number], what: string): void {
  expect(got, what).not.toBeNull();
  for (let i = 0; i < 2; i++) expect(Math.abs(got![i]! - want[i]!), `${what}[${i}]: ${got![i]} vs ${want[i]}`).toBeLessThan(1e-9 * Math.max(1, Math.abs(want[i]!)));
}

describe('a variant\'s confidence interval', () => {
  it('of a mean: Student t, as scipy computes it', () => {
    for (const c of ref.means) close(meanInterval({ n: c.n, mean: c.mean, variance: c.sd * c.sd }, c.alpha), c.ci, `mean n=${c.n}`);
  });

  it('of a rate: Wilson score, as statsmodels computes it', () => {
    for (const c of ref.rates) close(wilsonInterval({ n: c.n, successes: c.successes }, c.alpha), c.ci, `rate ${c.successes}/${c.n}`);
  });

  it('is null where undefined (one unit for a mean, none for a rate)', () => {
    expect(meanInterval({ n: 1, mean: 3, variance: 0 })).toBeNull();
    expect(meanInterval({ n: 0, mean: 0, variance: 0 })).toBeNull();
    expect(wilsonInterval({ n: 0, successes: 0 })).toBeNull();
  });
});
