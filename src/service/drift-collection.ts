/**
 * The control plane's drift monitor fed from every I/O thread: each plane samples its answers
 * (src/analyze/drift-sampler.ts) and this collects the samples into one DriftMonitor every
 * DRIFT_COLLECT_MS, and before any report, so that a report includes what was answered just
 * before it was asked.
 */
import { errorFields, log } from '../log.js';
import type { DriftBatch } from '../analyze/drift-sampler.js';
import { DRIFT_COLLECT_MS, DriftMonitor } from '../analyze/drift-monitor.js';

/** One I/O thread's plane as the collection reaches it. */
export interface DriftSource {
  thread: number;
  driftSamples(): Promise<DriftBatch[]>;
}

export class DriftCollection {
  readonly monitor: DriftMonitor;
  private timer: NodeJS.Timeout | undefined;
  private collecting: Promise<void> | undefined;

  /** `sources` is the engine's list of planes, read at each collection (threads attach later). */
  constructor(private readonly sources: readonly DriftSource[], opts: { referenceRows: number; windowMs: number; sampling: boolean }) {
    this.monitor = new DriftMonitor({ referenceRows: opts.referenceRows, windowMs: opts.windowMs });
    if (opts.sampling) {
      this.timer = setInterval(() => void this.collect(), DRIFT_COLLECT_MS);
      this.timer.unref();
    }
  }

  /**
   * Takes every plane's drift samples into the monitor (one collection at a time: a caller
   * arriving during one waits for it). A plane that cannot answer (a thread ending) is skipped.
   */
  collect(): Promise<void> {
    this.collecting ??= (async () => {
      try {
        const parts = await Promise.all(this.sources.map((l) => l.driftSamples().catch((e: unknown) => {
          log.warn('engine: drift samples not collected', { thread: l.thread, ...errorFields(e) });
          return [] as DriftBatch[];
        })));
        for (const batches of parts) for (const b of batches) this.monitor.ingest(b);
      } finally {
        this.collecting = undefined;
      }
    })();
    return this.collecting;
  }

  /** `version`'s sampled predictions since `sinceMs`, after collecting the latest samples. */
  async predictionsSince(model: string, version: string, sinceMs: number): Promise<Float64Array> {
    await this.collect();
    return this.monitor.predictionsSince(model, version, sinceMs);
  }

  /** Stops the periodic collection and waits for one under way (before the threads end). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.collecting;
  }
}
