/**
 * The decisions one I/O thread makes, on their way to the decision log: each routed answer and
 * each row a learned (deciding) version answers gets an event id and a decision row, buffered
 * here in one chunk (src/learn/decision-chunk.ts) and handed to the control plane in one message
 * when DECISION_BATCH rows are in it or DECISION_FLUSH_MS after its first, never blocking the
 * request. Without a sink (no decision log) answers still carry their decisions.
 */
import { lastEventIdMs, newEventId } from '../learn/event-id.js';
import { DecisionChunkBuilder, chunkVariant, type ChunkVariant, type DecisionChunk } from '../learn/decision-chunk.js';
import type { BatchTensor } from '../worker/runtimes/index.js';
import type { LearnedInfo } from '../worker/runtimes/types.js';
import type { PlaneRoute } from '../routing/plane-route.js';
import type { InferResponse } from './types.js';

/** Decisions buffered on a thread before they go to the decision log in one message. */
const DECISION_BATCH = 256;
const DECISION_FLUSH_MS = 20;

/** The variant the route in force picked for a request. */
export interface RoutePick {
  route: PlaneRoute;
  variant: string;
  index: number;
  propensity: number;
  /**
   * The request's features, when the route logs them: its own tensor's data when it is recorded
   * before the request's buffers can be reused (the chunk's builder copies them at once), else a copy.
   */
  features?: Float32Array;
}

/** A learned version as the recorder sees it. */
export interface LearnedVersion {
  version: string;
  /** What its rows are (the runtime's LearnedInfo.decides): 'arm' outputs arms and propensities. */
  decides: LearnedInfo['decides'];
  /** Its decision chunk key when no route chose it, cached on the version (chunkVariant). */
  unroutedVariant?: ChunkVariant;
}

export class DecisionRecorder {
  private readonly chunk = new DecisionChunkBuilder();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly sink: ((chunk: DecisionChunk) => void) | undefined) {}

  /**
   * A routed answer's decision (a learned version's rows are logged by `learned`): in the answer,
   * and to the log. The variant's chunk key (chunkVariant) is made once per variant (a fallback
   * answer from another version gets its own).
   */
  routed(res: InferResponse, r: RoutePick, model: string, unitId: string | undefined): void {
    const eventId = this.sink !== undefined ? this.chunk.nextId() : newEventId();
    res.decision = { eventId, variant: r.variant, propensity: r.propensity };
    if (this.sink === undefined) return;
    const route = r.route;
    const cv = res.version === route.spec.variants[r.index]!.version
      ? (route.chunkVariants[r.index] ??= chunkVariant(model, r.variant, res.version, route.decisionGen))
      : chunkVariant(model, r.variant, res.version, route.decisionGen);
    this.chunk.add(eventId, lastEventIdMs(), cv, unitId, r.propensity, r.features);
    this.added();
  }

  /**
   * A learned version's answer: a bandit's rows are decisions, one per row, logged with their
   * contexts (rows of `x`) so that feedback trains it. Behind a route, the decision carries the
   * route's variant too; its propensity is the arm's, given the version (what off-policy
   * evaluation of the bandit needs), and the route's share of that version is the variant's
   * weight in route generation `decisionGen`.
   */
  learned(res: InferResponse, v: LearnedVersion, model: string, unitId: string | undefined, x: Float32Array, outs: BatchTensor[], rows: number, r: RoutePick | undefined): void {
    const arm = v.decides === 'arm';
    const actions = arm ? outs[0]!.data as Int32Array : undefined;
    const props = arm ? outs[1]!.data as Float32Array : undefined;
    const d = x.length / rows;
    const variant = r ? r.variant : '';
    const cv = r
      ? (r.route.chunkVariants[r.index] ??= chunkVariant(model, r.variant, v.version, r.route.decisionGen))
      : (v.unroutedVariant ??= chunkVariant(model, '', v.version, 0));
    const ids: string[] = new Array<string>(rows);
    for (let i = 0; i < rows; i++) {
      const id = this.sink !== undefined ? this.chunk.nextId() : newEventId();
      ids[i] = id;
      if (this.sink !== undefined) {
        // A view of the row, no copy: the builder copies its bytes before returning.
        this.chunk.add(id, lastEventIdMs(), cv, unitId, props ? props[i]! : 1, x.subarray(i * d, (i + 1) * d), actions?.[i]);
      }
    }
    res.decision = { eventId: ids[0]!, variant, propensity: props ? props[0]! : 1 };
    if (actions) res.decision.action = actions[0]!;
    if (rows > 1) res.decision.eventIds = ids;
    if (this.sink !== undefined) this.added();
  }

  /** Hands the buffered decisions to the log now (one message to the control plane). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const chunk = this.chunk.take();
    if (chunk) this.sink?.(chunk);
  }

  /** Hands the chunk over when it is full, else makes sure it goes within DECISION_FLUSH_MS. */
  private added(): void {
    if (this.chunk.n >= DECISION_BATCH) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), DECISION_FLUSH_MS);
      this.timer.unref();
    }
  }
}
