/**
 * The two control laws of admission control (src/service/admission.ts) that run once per
 * interval, pure (fed by the probe and the engine's batchers, or by a test): the accepted
 * fraction driven by event-loop lag (signal 1 there) and the in-flight limit driven by
 * batcher queueing delay (signal 2).
 */

/** The accepted fraction never falls below this: some requests keep measuring the server. */
const MIN_ACCEPT = 0.05;
/**
 * Fewer requests than this in an interval (1,000 req/s) cannot be what makes the loop late: at
 * such rates a late loop is a busy neighbour on the machine, a long admin task (a swap storm
 * loading versions) or a test suite beside it, and its backlog is gone as soon as the turn ends.
 * Shedding there only fails requests (seen: a sequential client, and 300 req/s during a swap
 * storm, refused on a loaded 2-vCPU machine).
 */
export const MIN_REQUESTS = 50;
/**
 * ...unless the thread spent at least this share of the interval in pool waits that ended with
 * their answers (Admission.observeOwnWait): then the late loop is its own requests, however few.
 * A model that takes 2 ms on its one worker is overloaded at 768 req/s, under 50 an interval on
 * each of two I/O threads, and its queue formed in the kernel unseen (`npm run chaos --
 * overload`: accepted and refused p99 0.2-2.2 s at 2x, 2026-12-07). Waits that ran out do not
 * count: counting them refused an inline model's requests beside a 300 ms pooled one (chaos
 * slow-model, 2026-12-07), whose first requests were each waited for in vain.
 */
export const OWN_WAITS = 0.5;
/** Additive increase of the accepted fraction per calm interval (0.5 -> 1 in ten intervals). */
const ACCEPT_STEP = 0.05;

/**
 * The accepted fraction of new requests, driven by event-loop lag (pure: fed by the probe, or
 * by a test). `observe` takes each probe's lag; `endInterval` applies the control law.
 */
export class LagShedder {
  /** Fraction of new requests to accept, in [MIN_ACCEPT, 1]. */
  accept = 1;
  private minLag = Infinity;
  /** Smoothed lag, for metrics. */
  lagMs = 0;

  constructor(private readonly targetMs: number) {}

  observe(lagMs: number): void {
    if (lagMs < this.minLag) this.minLag = lagMs;
    this.lagMs += (lagMs - this.lagMs) * 0.2;
  }

  /**
   * `requests`: how many requests were decided during the interval. Lag with hardly any traffic
   * is not a queue of requests (start-up, a busy neighbour on the machine, a long admin task):
   * it never sheds, and counts as calm -- unless `ownShare`, the share of the interval the
   * thread spent waiting for its own requests' pooled answers, is OWN_WAITS or more.
   */
  endInterval(requests: number, ownShare = 0): void {
    const min = this.minLag;
    this.minLag = Infinity;
    if (min === Infinity) return;
    if (requests < MIN_REQUESTS && ownShare < OWN_WAITS) {
      // A quiet interval proves there is no queue of requests: admit everything again at once
      // (else the first requests after a burst are refused for up to a second).
      this.accept = 1;
    } else if (min > this.targetMs) {
      // A standing queue: cut in proportion to how far over the target it stands (at least
      // 10%, at most to a quarter per interval: a queue growing fast must be met fast).
      const cut = Math.min(0.9, Math.max(0.25, this.targetMs / min));
      this.accept = Math.max(MIN_ACCEPT, this.accept * cut);
    } else {
      // No standing queue (spikes are not one): admit more. Growing on every such interval,
      // not only on spotless ones, is what brings a noisy machine back to normal quickly.
      this.accept = Math.min(1, this.accept + ACCEPT_STEP);
    }
  }
}

/**
 * The adaptive in-flight limit, driven by queueing delay (pure: fed by the engine's batchers,
 * or by a test). `observe` takes each request's queueing delay; `endInterval` applies the law.
 */
export class DelayLimit {
  limit: number;
  private minDelay = Infinity;
  private peakInFlight = 0;

  constructor(private readonly targetMs: number, private readonly min: number, private readonly max: number) {
    this.limit = max;
  }

  observe(delayMs: number): void {
    if (delayMs < this.minDelay) this.minDelay = delayMs;
  }

  /** Notes how much of the limit is in use (growth only makes sense when it is). */
  inUse(inFlight: number): void {
    if (inFlight > this.peakInFlight) this.peakInFlight = inFlight;
  }

  endInterval(): void {
    const min = this.minDelay;
    const peak = this.peakInFlight;
    this.minDelay = Infinity;
    this.peakInFlight = 0;
    if (min === Infinity) return; // nothing queued: no evidence either way
    if (min > this.targetMs) {
      // Little's law: at the same throughput, cutting in-flight by target/delay brings the
      // delay to the target; at most halve, at least 10%, per interval. Cut from what was in
      // flight, not from a limit far above it: from the default 4,096 a queue that 64
      // connections had built took ten intervals of halving to reach a limit that bound
      // anything, and the clients' backlog of that second took as long again to drain
      // (`npm run chaos -- overload`: accepted and refused p99 0.7-2.2 s at 2x, 2026-12-07).
      const used = peak > 0 ? Math.min(this.limit, peak) : this.limit;
      const cut = Math.min(0.9, Math.max(0.5, this.targetMs / min));
      this.limit = Math.max(this.min, Math.floor(used * cut));
    } else if (peak >= this.limit * 0.5) {
      this.limit = Math.min(this.max, this.limit + Math.max(1, Math.round(Math.sqrt(this.limit))));
    }
  }
}
