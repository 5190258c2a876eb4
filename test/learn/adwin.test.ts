/**
 * ADWIN against River: scripts/stats/adwin_reference.py ran river.drift.ADWIN on seeded streams
 * and stored every detection and the window at a few points; ours must agree exactly.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Adwin } from '../../src/learn/adwin.js';
import { projectRoot } from '../../src/paths.js';

interface Probe { index: number; width: number; estimation: number; variance: number }
interface Case {
  name: string;
  params: { delta?: number; clock?: number; max_buckets?: number; min_window_length?: number; grace_period?: number };
  stream: number[];
  detections: number[];
  probes: Probe[];
}

const reference = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/adwin-reference.json'), 'utf8')) as { river_version: string; cases: Case[] };

function adwinFor(p: Case['params']): Adwin {
  return new Adwin({
    ...(p.delta !== undefined ? { delta: p.delta } : {}),
    ...(p.clock !== undefined ? { clock: p.clock } : {}),
    ...(p.max_buckets !== undefined ? { maxBuckets: p.max_buckets } : {}),
    ...(p.min_window_length !== undefined ? { minWindowLength: p.min_window_length } : {}),
    ...(p.grace_period !== undefined ? { gracePeriod: p.grace_period } : {}),
  });
}

describe(`ADWIN matches River ${reference.river_version}`, () => {
  it('the fixture covers changes in mean and variance, a constant stream and non-default settings', () => {
    const names = reference.cases.map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['mean_shift', 'variance_only', 'constant']));
    expect(reference.cases.find((c) => c.name === 'constant')!.detections).toEqual([]);
    expect(reference.cases.find((c) => c.name === 'mean_shift')!.detections.length).toBeGreaterThan(0);
    expect(reference.cases.some((c) => c.params.clock === 1)).toBe(true);
  });

  for (const c of reference.cases) {
    it(`${c.name}: identical detections and window`, () => {
      const adwin = adwinFor(c.params);
      const detections: number[] = [];
      const probes: Probe[] = [];
      const probeAt = new Set(c.probes.map((p) => p.index));
      c.stream.forEach((x, i) => {
        if (adwin.update(x)) detections.push(i);
        if (probeAt.has(i)) probes.push({ index: i, width: adwin.width, estimation: adwin.estimation, variance: adwin.variance });
      });
      expect(detections).toEqual(c.detections);
      expect(adwin.nDetections).toBe(c.detections.length);
      expect(probes.length).toBe(c.probes.length);
      probes.forEach((p, j) => {
        const want = c.probes[j]!;
        expect(p.index).toBe(want.index);
        expect(p.width).toBe(want.width);
        expect(p.estimation).toBeCloseTo(want.estimation, 12);
        expect(p.variance).toBeCloseTo(want.variance, 9);
      });
    });
  }

  it('detects nothing before its grace period and resets after a detection', () => {
    const adwin = new Adwin({ clock: 1, gracePeriod: 50 });
    for (let i = 0; i < 50; i++) expect(adwin.update(i < 25 ? 0 : 100)).toBe(false);
    let at = -1;
    for (let i = 0; i < 200 && at < 0; i++) if (adwin.update(100)) at = i;
    expect(at).toBe(0);
    expect(adwin.driftDetected).toBe(true);
    adwin.update(100);
    expect(adwin.width).toBe(1);
    expect(adwin.driftDetected).toBe(false);
  });

  it('refuses bad settings and non-finite values with INVALID_ARGUMENT', () => {
    expect(() => new Adwin({ delta: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('delta') }));
    expect(() => new Adwin({ clock: 0.5 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('clock') }));
    expect(() => new Adwin({ maxBuckets: 0 })).toThrow(expect.objectContaining({ message: expect.stringContaining('max_buckets') }));
    const adwin = new Adwin();
    adwin.update(1);
    expect(() => adwin.update(Number.NaN)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(adwin.width).toBe(1);
  });
});
