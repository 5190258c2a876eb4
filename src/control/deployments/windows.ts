/**
 * The judge's figures from the engine: a version's window of this replica's traffic
 * (src/metrics/windows.ts, merged over I/O threads) as a VersionWindow, its latencies as
 * (value, count) bins of the HDR histogram (each bucket at its lowest equivalent value, in ms:
 * both versions are binned alike, so ties are ties in both), and the shadow report's figures.
 */
import { SluiceError } from '../../errors.js';
import { WINDOW_BUCKET_MS, WINDOW_BUCKETS, latencyOf, type WindowSnapshot } from '../../metrics/windows.js';
import type { ShadowFigures } from './controller.js';
import type { VersionWindow } from './judge.js';

export interface WindowSource {
  windowSnapshot(model: string, version: string, seconds: number, opts?: { toMs?: number }): Promise<WindowSnapshot>;
}

export interface ShadowSource {
  shadowReport(model: string): Promise<{ shadows: Array<Record<string, unknown>> }>;
}

const EMPTY: VersionWindow = Object.freeze({ requests: 0, errors: 0, latency: [], p50: null, p99: null });

export function versionWindowOf(s: WindowSnapshot): VersionWindow {
  const h = latencyOf(s);
  const counts = (h as unknown as { _counts: Uint32Array })._counts;
  const j = h as unknown as { valueFromIndex(i: number): number };
  const latency: Array<[number, number]> = [];
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) latency.push([j.valueFromIndex(i) / 1000, counts[i]!]);
  const at = (q: number) => (h.totalCount > 0 ? h.getValueAtPercentile(q) / 1000 : null);
  return { requests: s.requests, errors: s.errors, latency, p50: at(50), p99: at(99) };
}

/** `version`'s window since `sinceMs` (whole 10 s buckets; at most the windows' 5 minutes). */
export function windowReader(engine: WindowSource): (model: string, version: string, sinceMs: number, nowMs?: number) => Promise<VersionWindow> {
  return async (model, version, sinceMs, nowMs = Date.now()) => {
    const seconds = Math.min(WINDOW_BUCKET_MS * WINDOW_BUCKETS, Math.max(1, nowMs - sinceMs)) / 1000;
    try {
      return versionWindowOf(await engine.windowSnapshot(model, version, seconds, { toMs: nowMs }));
    } catch (e) {
      // No thread has served it yet: no figures, which the judge reads as too few requests.
      if (e instanceof SluiceError && e.code === 'VERSION_NOT_FOUND') return EMPTY;
      throw e;
    }
  };
}

/** `version`'s figures in the model's shadow report (undefined when it is not mirrored here). */
export function shadowReader(engine: ShadowSource): (model: string, version: string) => Promise<ShadowFigures | undefined> {
  return async (model, version) => {
    const s = (await engine.shadowReport(model)).shadows.find((x) => x.version === version);
    if (!s) return undefined;
    const latency = s.latency_ms as { shadow?: { p99?: number | null }; caller?: { p99?: number | null } } | undefined;
    const n = (k: string) => Number(s[k] ?? 0);
    return { mirrored: n('mirrored'), errors: n('errors'), compared: n('compared'), agreeing: n('agreeing'), shadowP99: latency?.shadow?.p99 ?? null, callerP99: latency?.caller?.p99 ?? null };
  };
}
