/**
 * An experiment's figures as the analysis needs them: per variant and metric kind, sufficient
 * statistics over UNITS (count, mean, sample variance), never per event. They come from
 * `experiment_sums`, which the triggers of migration 008 keep as units change, so reading them is
 * a few rows however many units there are (`npm run bench -- experiments`: 1,000,000 units). The
 * sums are of x and x^2; the variance (ss - s^2/n)/(n - 1) loses digits only when a metric's
 * mean is ~1e7 times its standard deviation, far from rewards and conversions.
 *
 * CUPED's figures (the metric and the covariate over the units that have one) are read from the
 * units themselves, only those with a covariate (a partial index), with the database's careful
 * aggregates (avg, var_samp, covar_samp).
 */
import type { Queryable } from '../../registry/db.js';
import { num } from '../../registry/rows.js';

export interface Moments {
  n: number;
  mean: number;
  /** Sample variance (n - 1); 0 with fewer than two units. */
  variance: number;
}

/** The same metric over the units that have a covariate, with the covariate's figures. */
export interface CovariateMoments extends Moments {
  covariateMean: number;
  covariateVariance: number;
  /** Sample covariance of the metric and the covariate. */
  covariance: number;
}

export interface KindFigures extends Moments {
  /** Present when at least two units of the variant have a covariate. */
  cuped?: CovariateMoments;
}

export interface VariantFigures {
  variant: string;
  /** Units exposed (first decision under this variant). */
  units: number;
  /** Units that had feedback. */
  withFeedback: number;
  /** Units also seen under another variant (moved by a weight change). */
  crossed: number;
  /** Per unit: mean reward (units with feedback), total reward, converted (0/1), every unit. */
  mean: KindFigures;
  sum: KindFigures;
  rate: KindFigures & { successes: number };
}

export interface PeriodUnits {
  routeGen: number;
  variant: string;
  units: number;
}

/** Moments from a count, a sum and a sum of squares. */
export function momentsOf(n: number, sum: number, sumsq: number): Moments {
  if (n <= 0) return { n: 0, mean: 0, variance: 0 };
  const mean = sum / n;
  const variance = n < 2 ? 0 : Math.max(0, (sumsq - sum * mean) / (n - 1));
  return { n, mean, variance };
}

type SumsRow = { variant: string; route_gen: unknown; units: unknown; crossed: unknown; with_feedback: unknown; mean_sum: number; mean_sumsq: number; sum_sum: number; sum_sumsq: number; converted: unknown };

/** The CUPED columns of one kind: x is the per-unit value, `only` limits the units. */
function cupedColumns(k: string, x: string, only: string): string {
  const f = `FILTER (WHERE ${only})`;
  return [
    `count(*) ${f} AS ${k}_n`, `avg(${x}) ${f} AS ${k}_mean`, `var_samp(${x}) ${f} AS ${k}_var`,
    `avg(covariate) ${f} AS ${k}_zmean`, `var_samp(covariate) ${f} AS ${k}_zvar`, `covar_samp(${x}, covariate) ${f} AS ${k}_cov`,
  ].join(', ');
}

const CUPED_SQL = `SELECT variant,
    ${cupedColumns('mean', 'reward_sum / events', 'events > 0')},
    ${cupedColumns('sum', 'reward_sum', 'true')},
    ${cupedColumns('rate', 'converted::int::float8', 'true')}
  FROM experiment_units WHERE experiment_id = $1 AND covariate IS NOT NULL GROUP BY variant`;

function orZero(v: unknown): number {
  return v == null ? 0 : Number(v);
}

function cupedOf(r: Record<string, unknown>, k: string): CovariateMoments | undefined {
  const n = num(r[`${k}_n`]);
  if (n < 2) return undefined;
  return {
    n, mean: orZero(r[`${k}_mean`]), variance: orZero(r[`${k}_var`]),
    covariateMean: orZero(r[`${k}_zmean`]), covariateVariance: orZero(r[`${k}_zvar`]), covariance: orZero(r[`${k}_cov`]),
  };
}

/**
 * Per-variant figures of experiment `id` (variants with no unit yet are absent), and the units
 * first exposed in each period. `withCovariates`: read CUPED's figures too.
 */
export async function experimentFigures(db: Queryable, id: number, withCovariates: boolean): Promise<{ variants: VariantFigures[]; periods: PeriodUnits[] }> {
  const rows = await db.query<SumsRow>(
    `SELECT variant, route_gen, units, crossed, with_feedback, mean_sum, mean_sumsq, sum_sum, sum_sumsq, converted
       FROM experiment_sums WHERE experiment_id = $1 ORDER BY variant, route_gen`, [id],
  );
  const periods: PeriodUnits[] = [];
  const totals = new Map<string, { units: number; crossed: number; fb: number; ms: number; mss: number; ss: number; sss: number; conv: number }>();
  for (const r of rows) {
    periods.push({ routeGen: num(r.route_gen), variant: r.variant, units: num(r.units) });
    const t = totals.get(r.variant) ?? { units: 0, crossed: 0, fb: 0, ms: 0, mss: 0, ss: 0, sss: 0, conv: 0 };
    t.units += num(r.units); t.crossed += num(r.crossed); t.fb += num(r.with_feedback);
    t.ms += Number(r.mean_sum); t.mss += Number(r.mean_sumsq); t.ss += Number(r.sum_sum); t.sss += Number(r.sum_sumsq); t.conv += num(r.converted);
    totals.set(r.variant, t);
  }
  const cuped = new Map<string, Record<string, unknown>>();
  if (withCovariates) for (const r of await db.query(CUPED_SQL, [id])) cuped.set(r.variant as string, r);
  const variants = [...totals].map(([variant, t]): VariantFigures => {
    const c = cuped.get(variant);
    const kind = (k: string, m: Moments): KindFigures => {
      const cm = c ? cupedOf(c, k) : undefined;
      return cm ? { ...m, cuped: cm } : m;
    };
    return {
      variant,
      units: t.units,
      withFeedback: t.fb,
      crossed: t.crossed,
      mean: kind('mean', momentsOf(t.fb, t.ms, t.mss)),
      sum: kind('sum', momentsOf(t.units, t.ss, t.sss)),
      // x is 0 or 1: the sum of squares is the sum
      rate: { ...kind('rate', momentsOf(t.units, t.conv, t.conv)), successes: t.conv },
    };
  });
  return { variants, periods };
}
