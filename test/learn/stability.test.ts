/** The stability monitor's verdicts on synthetic update summaries, and its running median. */
import { describe, expect, it } from 'vitest';
import { ADWIN_DEFAULTS } from '../../src/learn/adwin.js';
import { parseStabilityOptions, RunningMedian, StabilityMonitor, STABILITY_DEFAULTS, type StabilityVerdict } from '../../src/learn/stability.js';
import { mulberry32 } from '../helpers/random.js';

const params = new Float64Array([0.1, -0.2, 0.3]);
const update = (loss: number, gradNorm = 1, p = params) => ({ loss, gradNorm, params: p });
const reason = (v: StabilityVerdict) => (v.ok ? 'ok' : v.reason);

describe('RunningMedian', () => {
  it.each([1, 2, 7, 100])('equals the sorted median of the last %i values', (capacity) => {
    const r = mulberry32(capacity);
    const m = new RunningMedian(capacity);
    const all: number[] = [];
    expect(m.median()).toBeNaN();
    for (let i = 0; i < 500; i++) {
      const v = Math.floor(r() * 50) / 4; // ties included
      m.push(v);
      all.push(v);
      const last = all.slice(-capacity).sort((a, b) => a - b);
      const mid = last.length >> 1;
      expect(m.median()).toBe(last.length % 2 ? last[mid] : (last[mid - 1]! + last[mid]!) / 2);
      expect(m.size).toBe(last.length);
    }
    m.clear();
    expect(m.size).toBe(0);
  });
});

describe('StabilityMonitor', () => {
  it('refuses NaN or infinity in the loss, the gradient norm or the parameters', () => {
    const m = new StabilityMonitor();
    expect(m.judge(update(Number.NaN))).toMatchObject({ ok: false, reason: 'non_finite' });
    expect(m.judge(update(0.5, Number.POSITIVE_INFINITY))).toMatchObject({ ok: false, reason: 'non_finite' });
    expect(m.judge(update(0.5, 1, new Float64Array([0, Number.NEGATIVE_INFINITY, 0])))).toEqual({ ok: false, reason: 'non_finite', detail: 'parameter 1 would be -Infinity' });
    expect(m.history).toBe(0);
    expect(m.judge(update(0.5))).toEqual({ ok: true });
    expect(m.history).toBe(1);
  });

  it('judges spikes against factor x the running median, once min_history updates were accepted', () => {
    const m = new StabilityMonitor({ adwin: false });
    expect(m.judge(update(1, 1))).toEqual({ ok: true });
    expect(m.judge(update(50, 50))).toEqual({ ok: true }); // too little history to judge
    for (let i = 0; i < 8; i++) expect(m.judge(update(1, 1)).ok).toBe(true);
    expect(m.history).toBe(10); // median loss 1, median gradient norm 1
    const spike = m.judge(update(10.5, 1));
    expect(spike).toMatchObject({ ok: false, reason: 'loss_spike', detail: expect.stringContaining('> 10 x median 1.000') });
    expect(reason(m.judge(update(1, 10.5)))).toBe('gradient_spike');
    expect(reason(m.judge(update(-20, 1)))).toBe('loss_spike'); // absurd labels: a hugely negative "log-loss"
    expect(reason(m.judge(update(9.9, 9.9)))).toBe('ok');
  });

  it('a refused update enters no median', () => {
    const m = new StabilityMonitor({ adwin: false, window: 3, minHistory: 3 });
    for (let i = 0; i < 3; i++) m.judge(update(1));
    expect(reason(m.judge(update(20)))).toBe('loss_spike');
    expect(reason(m.judge(update(20)))).toBe('loss_spike');
    // Had the two refusals entered, the median of the last 3 would be 20 and 15 would pass.
    expect(reason(m.judge(update(15)))).toBe('loss_spike');
    expect(m.history).toBe(3);
  });

  it('refuses a rise in the loss that ADWIN detects, then rebuilds its medians from the new level', () => {
    const r = mulberry32(99);
    const m = new StabilityMonitor();
    const verdicts: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const level = i < 500 ? 0.3 : 0.9;
      verdicts.push(reason(m.judge(update(level + (r() - 0.5) * 0.2, 1 + r() * 0.1))));
    }
    const drifts = verdicts.flatMap((v, i) => (v === 'loss_drift' ? [i] : []));
    expect(drifts.length).toBe(1);
    expect(drifts[0]).toBeGreaterThanOrEqual(500);
    expect(drifts[0]).toBeLessThan(600);
    expect(verdicts.filter((v) => v !== 'ok' && v !== 'loss_drift')).toEqual([]);
    expect(verdicts.slice(drifts[0]! + 1).every((v) => v === 'ok')).toBe(true);
  });

  it('accepts a fall in the loss that ADWIN detects, and forgets the old medians', () => {
    const r = mulberry32(7);
    const m = new StabilityMonitor();
    let dropped = -1;
    for (let i = 0; i < 1000; i++) {
      const before = m.history;
      expect(m.judge(update((i < 500 ? 0.9 : 0.3) + (r() - 0.5) * 0.2)).ok).toBe(true);
      if (m.history < before && dropped < 0) dropped = i;
    }
    expect(dropped).toBeGreaterThanOrEqual(500);
    expect(dropped).toBeLessThan(600);
  });

  it('a gradient spike is refused even on the update where ADWIN forgets the medians', () => {
    const adwin = { ...ADWIN_DEFAULTS, clock: 1 };
    const losses = Array.from({ length: 200 }, (_, i) => (i < 100 ? 1 : 0.1));
    const dry = new StabilityMonitor({ adwin });
    let cut = -1;
    losses.forEach((loss, i) => {
      const before = dry.history;
      dry.judge(update(loss));
      if (dry.history < before && cut < 0) cut = i;
    });
    expect(cut).toBeGreaterThan(100);
    const m = new StabilityMonitor({ adwin });
    for (let i = 0; i < cut; i++) expect(m.judge(update(losses[i]!)).ok).toBe(true);
    expect(reason(m.judge(update(losses[cut]!, 100)))).toBe('gradient_spike');
  });

  it('refuses bad settings', () => {
    expect(() => new StabilityMonitor({ factor: 1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new StabilityMonitor({ window: 5, minHistory: 6 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('parseStabilityOptions', () => {
  it('reads snake_case settings with defaults', () => {
    expect(parseStabilityOptions(undefined)).toEqual(STABILITY_DEFAULTS);
    expect(parseStabilityOptions({ factor: 5, window: 50, min_history: 20, adwin: { delta: 0.01, clock: 1 } })).toEqual({
      factor: 5, window: 50, minHistory: 20, adwin: { ...ADWIN_DEFAULTS, delta: 0.01, clock: 1 },
    });
    expect(parseStabilityOptions({ window: 4, adwin: false })).toEqual({ factor: 10, window: 4, minHistory: 4, adwin: false });
  });

  it.each([
    [[], 'parameters.stability: must be an object'],
    [{ factor: 1 }, 'parameters.stability.factor'],
    [{ window: 0 }, 'parameters.stability.window'],
    [{ window: 10, min_history: 11 }, 'parameters.stability.min_history'],
    [{ median_window: 10 }, 'parameters.stability.median_window: unknown field'],
    [{ adwin: true }, 'parameters.stability.adwin: must be an object or false'],
    [{ adwin: { delta: 2 } }, 'parameters.stability.adwin.delta'],
    [{ adwin: { clock: 0 } }, 'parameters.stability.adwin.clock'],
    [{ adwin: { gracePeriod: 3 } }, 'parameters.stability.adwin.gracePeriod: unknown field'],
  ])('%j is refused with MANIFEST_INVALID naming the field', (raw, message) => {
    expect(() => parseStabilityOptions(raw)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID', message: expect.stringContaining(message) }));
  });
});
