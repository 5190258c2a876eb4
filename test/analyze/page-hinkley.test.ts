/**
 * Page-Hinkley against River: scripts/stats/page_hinkley_reference.py ran river.drift.PageHinkley
 * on seeded streams and stored every detection and the state at a few points; ours must agree.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PageHinkley, type PageHinkleyMode } from '../../src/analyze/page-hinkley.js';
import { projectRoot } from '../../src/paths.js';

interface Probe { index: number; count: number; mean: number; increase: number; decrease: number }
interface Case {
  name: string;
  params: { min_instances?: number; delta?: number; threshold?: number; alpha?: number; mode?: PageHinkleyMode };
  stream: number[];
  detections: number[];
  probes: Probe[];
}

const reference = JSON.parse(readFileSync(path.join(projectRoot, 'test/fixtures/stats/page-hinkley-reference.json'), 'utf8')) as { river_version: string; cases: Case[] };

function detectorFor(p: Case['params']): PageHinkley {
  return new PageHinkley({
    ...(p.min_instances !== undefined ? { minInstances: p.min_instances } : {}),
    ...(p.delta !== undefined ? { delta: p.delta } : {}),
    ...(p.threshold !== undefined ? { threshold: p.threshold } : {}),
    ...(p.alpha !== undefined ? { alpha: p.alpha } : {}),
    ...(p.mode !== undefined ? { mode: p.mode } : {}),
  });
}

describe(`Page-Hinkley matches River ${reference.river_version}`, () => {
  it('the fixture covers rises, falls, each mode, a constant stream and no forgetting', () => {
    const byName = new Map(reference.cases.map((c) => [c.name, c]));
    expect(byName.get('constant')!.detections).toEqual([]);
    expect(byName.get('mean_up')!.detections.length).toBeGreaterThan(0);
    // The up-only and down-only detectors see different changes of the same stream.
    expect(byName.get('up_down_up')!.detections).not.toEqual(byName.get('up_down_down')!.detections);
    expect(reference.cases.some((c) => c.params.alpha === 1)).toBe(true);
  });

  for (const c of reference.cases) {
    it(`${c.name}: identical detections and state`, () => {
      const ph = detectorFor(c.params);
      const detections: number[] = [];
      const probes: Probe[] = [];
      const probeAt = new Set(c.probes.map((p) => p.index));
      c.stream.forEach((x, i) => {
        if (ph.update(x)) detections.push(i);
        if (probeAt.has(i)) probes.push({ index: i, count: ph.count, mean: ph.estimation, increase: ph.increaseStatistic, decrease: ph.decreaseStatistic });
      });
      expect(detections).toEqual(c.detections);
      expect(ph.nDetections).toBe(c.detections.length);
      expect(probes.length).toBe(c.probes.length);
      probes.forEach((p, j) => {
        const want = c.probes[j]!;
        expect(p.index).toBe(want.index);
        expect(p.count).toBe(want.count);
        expect(p.mean).toBeCloseTo(want.mean, 12);
        expect(p.increase).toBeCloseTo(want.increase, 9);
        expect(p.decrease).toBeCloseTo(want.decrease, 9);
      });
    });
  }

  it('reports nothing before min_instances and resets on the update after a detection', () => {
    const ph = new PageHinkley({ minInstances: 20, threshold: 5, delta: 0 });
    for (let i = 0; i < 19; i++) expect(ph.update(i < 10 ? 0 : 10)).toBe(false);
    expect(ph.update(10)).toBe(true);
    expect(ph.count).toBe(20);
    expect(ph.update(10)).toBe(false);
    expect(ph.count).toBe(1);
    expect(ph.estimation).toBe(10);
  });

  it('refuses bad settings and non-finite values with INVALID_ARGUMENT', () => {
    expect(() => new PageHinkley({ threshold: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('threshold') }));
    expect(() => new PageHinkley({ alpha: 1.5 })).toThrow(expect.objectContaining({ message: expect.stringContaining('alpha') }));
    expect(() => new PageHinkley({ minInstances: 0 })).toThrow(expect.objectContaining({ message: expect.stringContaining('min_instances') }));
    expect(() => new PageHinkley({ mode: 'sideways' as PageHinkleyMode })).toThrow(expect.objectContaining({ message: expect.stringContaining('mode') }));
    const ph = new PageHinkley();
    ph.update(1);
    expect(() => ph.update(Number.POSITIVE_INFINITY)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(ph.count).toBe(1);
  });
});
