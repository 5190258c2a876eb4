/** Learning-rate schedules against their formulas, worked out by hand, and their manifest form. */
import { describe, expect, it } from 'vitest';
import { adagradRate, descend, parseSchedule, scalarRate, scheduleToJSON, type AdaGradSchedule, type ScalarSchedule } from '../../src/learn/schedules.js';

describe('schedule formulas', () => {
  it('constant: lr at every step', () => {
    const s = parseSchedule({ type: 'constant', lr: 0.25 });
    for (const t of [0, 1, 7, 1e6]) expect(scalarRate(s as ScalarSchedule, t)).toBe(0.25);
  });

  it('exponential: lr0 * gamma^(t / steps)', () => {
    const s = parseSchedule({ type: 'exponential', lr0: 0.5, gamma: 0.1, steps: 10 }) as ScalarSchedule;
    expect(scalarRate(s, 0)).toBe(0.5);
    expect(scalarRate(s, 5)).toBeCloseTo(0.15811388300841897, 15); // 0.5 * 0.1^0.5
    expect(scalarRate(s, 10)).toBeCloseTo(0.05, 15);
    expect(scalarRate(s, 30)).toBeCloseTo(0.0005, 15);
  });

  it('cosine: anneals from lr0 to lr_min over T steps, then restarts', () => {
    const s = parseSchedule({ type: 'cosine', lr0: 1, lr_min: 0.1, period: 4 }) as ScalarSchedule;
    // lr_min + 0.9 * (1 + cos(pi t / 4)) / 2 for t = 0..3: 1, 0.1 + 0.9 * 0.853553..., 0.55, 0.1 + 0.9 * 0.146446...
    const oneCycle = [1, 0.8681980515339464, 0.55, 0.23180194846605362];
    for (let t = 0; t < 12; t++) expect(scalarRate(s, t)).toBeCloseTo(oneCycle[t % 4]!, 14);
    expect(parseSchedule({ type: 'cosine', lr0: 0.3, period: 2 })).toEqual({ type: 'cosine', lr0: 0.3, lrMin: 0, period: 2 });
  });

  it('adagrad: per coordinate lr0 / (sqrt(G_j) + eps), G_j including this step', () => {
    const s = parseSchedule({ type: 'adagrad', lr0: 0.5, eps: 0.01 });
    expect(adagradRate(s as AdaGradSchedule, 16)).toBeCloseTo(0.5 / 4.01, 15);
    const params = new Float64Array([1, 1, 1]);
    const accum = new Float64Array(3);
    descend(s, 0, new Float64Array([3, 4, 0]), params, accum);
    expect([...accum]).toEqual([9, 16, 0]);
    expect(params[0]).toBeCloseTo(1 - (0.5 / 3.01) * 3, 15);
    expect(params[1]).toBeCloseTo(1 - (0.5 / 4.01) * 4, 15);
    expect(params[2]).toBe(1);
    descend(s, 1, new Float64Array([3, 0, 1]), params, accum);
    expect([...accum]).toEqual([18, 16, 1]);
    expect(params[0]).toBeCloseTo(1 - (0.5 / 3.01) * 3 - (0.5 / (Math.sqrt(18) + 0.01)) * 3, 15);
    expect(params[2]).toBeCloseTo(1 - 0.5 / 1.01, 15);
  });

  it('descend with a scalar schedule subtracts rate(t) * grad', () => {
    const s = parseSchedule({ type: 'exponential', lr0: 1, gamma: 0.5, steps: 1 });
    const params = new Float64Array([2, -2]);
    descend(s, 3, new Float64Array([8, 16]), params, null); // rate 0.125
    expect([...params]).toEqual([1, -4]);
  });
});

describe('schedule manifest form', () => {
  it('round-trips through its snake_case JSON', () => {
    for (const raw of [
      { type: 'constant', lr: 0.1 },
      { type: 'exponential', lr0: 0.1, gamma: 0.9, steps: 100 },
      { type: 'cosine', lr0: 0.1, lr_min: 0.001, period: 500 },
      { type: 'adagrad', lr0: 0.5, eps: 1e-6 },
    ]) expect(scheduleToJSON(parseSchedule(raw))).toEqual(raw);
    expect(parseSchedule({ type: 'adagrad', lr0: 0.5 })).toEqual({ type: 'adagrad', lr0: 0.5, eps: 1e-8 });
  });

  it.each([
    [null, 'parameters.schedule: must be an object'],
    [{ lr: 0.1 }, 'parameters.schedule.type: must be one of constant, exponential, cosine, adagrad'],
    [{ type: 'sgd', lr: 0.1 }, 'parameters.schedule.type'],
    [{ type: 'constant' }, 'parameters.schedule.lr: is required'],
    [{ type: 'constant', lr: 0 }, 'parameters.schedule.lr: must be a number in (0'],
    [{ type: 'constant', lr: '0.1' }, 'parameters.schedule.lr'],
    [{ type: 'constant', lr: 0.1, lr0: 0.1 }, 'parameters.schedule.lr0: unknown field for a constant schedule'],
    [{ type: 'exponential', lr0: 0.1, gamma: 1.5, steps: 10 }, 'parameters.schedule.gamma'],
    [{ type: 'exponential', lr0: 0.1, gamma: 0.9, steps: 0 }, 'parameters.schedule.steps: must be an integer >= 1'],
    [{ type: 'exponential', lr0: 0.1, gamma: 0.9, steps: 2.5 }, 'parameters.schedule.steps'],
    [{ type: 'cosine', lr0: 0.1, lr_min: 0.2, period: 10 }, 'parameters.schedule.lr_min: must be a number in [0, 0.1]'],
    [{ type: 'cosine', lr0: 0.1 }, 'parameters.schedule.period: is required'],
    [{ type: 'cosine', lr0: 0.1, period: 10, T: 10 }, 'parameters.schedule.T: unknown field'],
    [{ type: 'adagrad', lr0: Number.POSITIVE_INFINITY }, 'parameters.schedule.lr0'],
    [{ type: 'adagrad', lr0: 0.1, eps: -1 }, 'parameters.schedule.eps'],
  ])('%j is refused with MANIFEST_INVALID naming the field', (raw, message) => {
    expect(() => parseSchedule(raw)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID', message: expect.stringContaining(message) }));
  });

  it('names the place it was given', () => {
    expect(() => parseSchedule({ type: 'constant', lr: -1 }, 'm@1/model.json.parameters.learning.schedule')).toThrow(/^m@1\/model\.json\.parameters\.learning\.schedule\.lr:/);
  });
});
