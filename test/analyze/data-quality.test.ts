import { describe, expect, it } from 'vitest';
import { dataQuality, featureBaseline, featureQuality, qualityBaseline } from '../../src/analyze/data-quality.js';

describe('data quality against a reference baseline', () => {
  const reference = {
    age: [20, 35, Number.NaN, 60, 41],
    income: Float64Array.from([1000, 2500, 4000, 3000]),
    flag: [Number.NaN, Number.NaN],
  };
  const baseline = qualityBaseline(reference);

  it('the baseline keeps min, max and missing per feature', () => {
    expect(baseline.age).toEqual({ count: 5, missing: 1, min: 20, max: 60 });
    expect(baseline.income).toEqual({ count: 4, missing: 0, min: 1000, max: 4000 });
    expect(baseline.flag).toEqual({ count: 2, missing: 2, min: null, max: null });
  });

  it('counts missing and out-of-range values per feature and sums them', () => {
    const report = dataQuality(baseline, {
      age: [19, 20, 60, 61, Number.NaN, Number.NaN, Infinity, 30],
      income: [1000, 4000.5, -Infinity],
      flag: [1],
      extra: [1, 2],
    });
    expect(report.features.age).toEqual({
      count: 8, missing: 2, missingShare: 0.25, baselineMissingShare: 0.2, belowMin: 1, aboveMax: 2, outOfRange: 3, outOfRangeShare: 0.5,
    });
    expect(report.features.income).toMatchObject({ missing: 0, belowMin: 1, aboveMax: 1, outOfRange: 2 });
    // A feature never present in the reference has no range: any present value is outside it.
    expect(report.features.flag).toMatchObject({ missing: 0, missingShare: 0, baselineMissingShare: 1, outOfRange: 1 });
    expect(report.summary).toEqual({
      values: 12, missing: 2, outOfRange: 6,
      featuresWithMoreMissing: ['age'], featuresOutOfRange: ['age', 'income', 'flag'], absentFeatures: [], unknownFeatures: ['extra'],
    });
  });

  it('reports baseline features the sample lacks, and an in-range sample as clean', () => {
    const report = dataQuality(baseline, { age: [20, 60, 33] });
    expect(report.summary.absentFeatures).toEqual(['income', 'flag']);
    expect(report.summary.outOfRange).toBe(0);
    expect(report.features.age!.outOfRangeShare).toBe(0);
  });

  it('a range tolerance widens the range by a share of it on each side', () => {
    const base = featureBaseline([0, 10]);
    expect(featureQuality(base, [-1, 11, -1.5, 12]).outOfRange).toBe(4);
    const widened = featureQuality(base, [-1, 11, -1.5, 12], { rangeTolerance: 0.1 });
    expect(widened).toMatchObject({ belowMin: 1, aboveMax: 1 });
  });

  it('refuses what is not numbers with INVALID_ARGUMENT', () => {
    expect(() => qualityBaseline({ a: 'text' as unknown as number[] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => dataQuality(baseline, { age: [1, '2' as unknown as number] })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => featureQuality(baseline.age!, [1], { rangeTolerance: -1 })).toThrow(expect.objectContaining({ message: expect.stringContaining('rangeTolerance') }));
  });
});
