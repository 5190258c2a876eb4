/**
 * The server's alert sources (builtin.ts names them): per model version, the error rate and the
 * p99 latency over the SLO from this replica's windows (src/metrics/windows.ts, the last
 * SIGNAL_WINDOW_S seconds, merged over I/O threads); the growth of the local feedback log since
 * the previous reading; `drift_detected` from the drift monitor (src/analyze/drift-monitor.ts).
 * `learner_unstable` from the online learners (src/learn/learners.ts): 1 while a version's learner
 * had an update rejected by its stability checks in the last SIGNAL_WINDOW_S (undefined, which
 * never fires, for a version that learns nothing).
 *
 * Version sources expand to every version this replica serves, so a built-in rule without a
 * model label becomes one alert per model version.
 */
import { SluiceError } from '../../errors.js';
import type { WindowStats } from '../../metrics/windows.js';
import type { Labels } from './rules.js';
import type { Signals } from './signals.js';

export const SIGNAL_WINDOW_S = 60;
const VERSION_SOURCES = new Set(['error_rate', 'latency_p99_over_slo', 'drift_detected', 'learner_unstable']);

export interface SignalSources {
  windowStats(model: string, version: string, seconds: number): Promise<WindowStats>;
  servedVersions(): Array<{ model: string; version: string }>;
  /** Bytes in the local feedback log now. */
  feedbackLogBytes(): number;
  /** The p99 latency objective (ms). */
  sloMs: number;
  /** Optional monitors (undefined: no figure). */
  driftDetected?(model: string, version: string): boolean | undefined;
  /** Whether the version's online learner had an update rejected within the last `windowMs`. */
  learnerUnstable?(model: string, version: string, windowMs: number): boolean | undefined;
}

export function serverSignals(src: SignalSources): Signals {
  let lastLog: { bytes: number } | undefined;
  const stats = async (labels: Labels): Promise<WindowStats | undefined> => {
    const { model, version } = labels;
    if (model === undefined || version === undefined) return undefined;
    try {
      return await src.windowStats(model, version, SIGNAL_WINDOW_S);
    } catch (e) {
      // A version no thread has served yet (or gone): no figure.
      if (e instanceof SluiceError && (e.code === 'VERSION_NOT_FOUND' || e.code === 'MODEL_NOT_FOUND')) return undefined;
      throw e;
    }
  };
  return {
    async read(source, labels) {
      switch (source) {
        case 'error_rate': {
          const s = await stats(labels);
          return s && s.requests > 0 ? s.errors / s.requests : undefined;
        }
        case 'latency_p99_over_slo': {
          const s = await stats(labels);
          return s && s.latency.count > 0 ? s.latency.p99 / src.sloMs : undefined;
        }
        case 'drift_detected': {
          const d = labels.model && labels.version ? src.driftDetected?.(labels.model, labels.version) : undefined;
          return d === undefined ? undefined : d ? 1 : 0;
        }
        case 'learner_unstable': {
          const u = labels.model && labels.version ? src.learnerUnstable?.(labels.model, labels.version, SIGNAL_WINDOW_S * 1000) : undefined;
          return u === undefined ? undefined : u ? 1 : 0;
        }
        case 'feedback_log_bytes_growth': {
          const bytes = src.feedbackLogBytes();
          const growth = lastLog === undefined ? 0 : bytes - lastLog.bytes;
          lastLog = { bytes };
          return growth;
        }
        default:
          return undefined;
      }
    },
    expand(source, labels) {
      if (!VERSION_SOURCES.has(source)) return undefined;
      return src.servedVersions()
        .filter((v) => (labels.model === undefined || labels.model === v.model) && (labels.version === undefined || labels.version === v.version))
        .map((v) => ({ ...labels, model: v.model, version: v.version }));
    },
  };
}
