/**
 * A circuit breaker for one model version. Closed: every call runs and its outcome goes into a
 * sliding window of the last `window` calls; once the window holds at least `minCalls` calls and
 * the failure rate reaches `failureRate`, it opens. Open: calls are refused (the caller answers
 * from its fallback) for `openMs`. Then half-open: at most `halfOpenProbes` calls at a time run
 * as probes, the others are refused as if open; `closeAfter` successful probes close it (with an
 * empty window), one failed probe opens it again for another `openMs`.
 *
 * Hand-written rather than `opossum`: opossum's `fire()` wraps the call in a promise (and arms a
 * timer per call), but an inline model answers synchronously with no promise at all on the HTTP
 * hot path, and that must stay so. Everything here is a few integer operations per call with no
 * allocation and no timers: state changes happen lazily, when a call or a metrics read looks.
 */
import type { CircuitBreakerPolicy } from '../../model/policies.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** What `admit` answers: refused, a normal (closed) call, or a probe of the half-open epoch > 0. */
export const REFUSED = -1;
export const CLOSED_CALL = 0;
export type Ticket = number;

export class CircuitBreaker {
  private state: BreakerState = 'closed';
  /** Ring of the last `window` outcomes of closed calls (1 = failure). */
  private readonly ring: Uint8Array;
  private at = 0;
  private calls = 0;
  private failures = 0;
  private openedAt = 0;
  /** Numbers each half-open period, so a probe that returns after the state moved on is ignored. */
  private epoch = 0;
  private probesInFlight = 0;
  private probeSuccesses = 0;

  constructor(
    readonly policy: CircuitBreakerPolicy,
    private readonly onTransition: (from: BreakerState, to: BreakerState) => void = () => undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.ring = new Uint8Array(policy.window);
  }

  /** The state now (moves open -> half-open when the cool-down is over). */
  get current(): BreakerState {
    if (this.state === 'open' && this.now() - this.openedAt >= this.policy.openMs) this.halfOpen();
    return this.state;
  }

  /** Probes running now (half-open only). */
  get probes(): number {
    return this.probesInFlight;
  }

  /** May a call run? REFUSED, CLOSED_CALL, or a probe ticket to hand back to `record`. */
  admit(): Ticket {
    if (this.state === 'closed') return CLOSED_CALL;
    if (this.current === 'open') return REFUSED;
    if (this.probesInFlight >= this.policy.halfOpenProbes) return REFUSED;
    this.probesInFlight++;
    return this.epoch;
  }

  /** The outcome of an admitted call. */
  record(ticket: Ticket, ok: boolean): void {
    if (ticket === CLOSED_CALL) {
      // A call admitted while closed that returns after the breaker opened tells nothing new.
      if (this.state === 'closed') this.remember(ok);
      return;
    }
    if (ticket !== this.epoch || this.state !== 'half_open') return;
    this.probesInFlight--;
    if (!ok) {
      this.open();
    } else if (++this.probeSuccesses >= this.policy.closeAfter) {
      this.close();
    }
  }

  /** An admitted call that ended without a verdict on the model (e.g. refused by a full queue). */
  cancel(ticket: Ticket): void {
    if (ticket > 0 && ticket === this.epoch && this.state === 'half_open') this.probesInFlight--;
  }

  private remember(ok: boolean): void {
    const p = this.policy;
    if (this.calls === p.window) {
      this.failures -= this.ring[this.at]!;
    } else {
      this.calls++;
    }
    const bad = ok ? 0 : 1;
    this.ring[this.at] = bad;
    this.failures += bad;
    this.at = (this.at + 1) % p.window;
    if (!ok && this.calls >= p.minCalls && this.failures >= p.failureRate * this.calls) this.open();
  }

  private move(to: BreakerState): void {
    const from = this.state;
    this.state = to;
    this.onTransition(from, to);
  }

  private open(): void {
    this.openedAt = this.now();
    this.probesInFlight = 0;
    this.move('open');
  }

  private halfOpen(): void {
    this.epoch++;
    this.probesInFlight = 0;
    this.probeSuccesses = 0;
    this.move('half_open');
  }

  private close(): void {
    this.ring.fill(0);
    this.at = 0;
    this.calls = 0;
    this.failures = 0;
    this.probesInFlight = 0;
    this.move('closed');
  }
}
