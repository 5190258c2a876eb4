/**
 * Admission control: which requests the server takes on, decided at each request's entry, before
 * its body is read or decoded, so that a refusal costs almost nothing and the accepted requests
 * keep their latency when more arrives than the server can answer.
 *
 * Three signals, for the two places where the queue grows under overload (1 and 3 watch the same one;
 * the control laws of 1 and 2 are in admission-laws.ts):
 *
 * 1. The event loop and the kernel. Models that run inline answer synchronously, so nothing
 *    queues inside the engine: under open-loop overload the requests wait unread in socket
 *    buffers, and the only thing the process can see of that queue is how long each turn of its
 *    event loop takes (a turn handles everything read from every socket). A timer probe measures
 *    that lag. Like CoDel, a standing queue is one whose *minimum* lag over an interval stays
 *    above the target (one GC pause or one burst is not); then the accepted fraction of new
 *    requests is cut in proportion to the excess (multiplicative decrease), and it grows back
 *    additively in every interval without one. Refusals are spread evenly (a credit
 *    counter, no random draw).
 * 2. Work in flight inside the engine (pooled models: batcher queue and workers). A concurrency
 *    limit bounds it; the limit adapts to the measured queueing delay (time a request waited in
 *    the batcher): shrinking when the interval's minimum delay is above its target, growing by
 *    about sqrt(limit) per interval while the delay is low and the limit is in use (the
 *    gradient/Vegas family of Netflix's concurrency-limits, on a delay rather than an RTT
 *    ratio, so fast and slow models can share one limit). It is checked where a request enters
 *    the pool's dispatch (enterPool, once its model is known and its body decoded), and counts
 *    only such requests; at every request's entry only the fixed ceiling
 *    (SLUICE_ADMISSION_MAX_IN_FLIGHT) bounds the requests in flight.
 * 3. The turn in progress. The lag probe sees a queue only once an interval (50 ms) has passed,
 *    by which time every client has felt it. Within one turn of the event loop, though, the
 *    requests taken later were waiting (in socket buffers) at least as long as the turn has run
 *    so far. Once LONG_TURNS turns in a row have run past the budget
 *    (SLUICE_ADMISSION_TURN_BUDGET_MS) while working (a turn long in wall time but not in the
 *    thread's CPU time was stalled, not overfed), the last of them did not do clearly less work
 *    than the one before (a backlog that shrinks turn by turn is draining by itself: the turns
 *    after a GC pause or a descheduled stretch below capacity), and either it did LARGE_TURN
 *    budgets of work that arrived at an overload's rate (ARRIVING: not the backlog of a thread
 *    descheduled mid-turn below capacity) or the event loop was hardly ever idle since the
 *    interval before (BUSY_LOOP: turns just past the budget at half capacity, on a machine
 *    shared with other busy threads, are not an overload); and for an interval after the last
 *    such streak, a turn that runs past it refuses the rest of what it reads. That bounds a
 *    turn, and so every request's wait, to about the budget plus the refusals' own cost, from the third
 *    turn of an overload on. It applies only while the thread takes at least MIN_REQUESTS per
 *    interval (counting the current one), for the same reason as the lag signal: at low rates a
 *    long turn is one slow request or a busy machine, and the few requests behind it are better
 *    answered late than refused. (Tried and dropped: also capping the share of time a thread
 *    spends on admitted work, to leave CPU to the generator on a shared machine; in three A/B
 *    runs of `npm run bench -- overload` it made the accepted p99 2-4x worse, not better.)
 *
 * Pooled models answered over HTTP are the exception to both MIN_REQUESTS floors: each such
 * request holds its I/O thread asleep until its answer (the pool wait, SLUICE_HTTP_POOL_WAIT_US),
 * so a few of them a turn are the thread's whole capacity, and the queue they leave forms in the
 * kernel. While a thread takes fewer than MIN_REQUESTS an interval, a pool wait that ended with
 * its answer counts as the turn's work (bar the turn's first, which delays nothing behind it),
 * and an interval half spent in such waits counts as busy (OWN_WAITS in admission-laws.ts).
 *
 * Per-connection bounds are the transports' own: an HTTP/1.1 connection has one request in
 * flight (uWebSockets.js refuses asynchronous pipelining), a gRPC connection at most
 * SLUICE_GRPC_MAX_CONCURRENT_STREAMS calls, a stream (gRPC or WebSocket) SLUICE_STREAM_MAX_IN_FLIGHT.
 *
 * Health, metrics and admin requests never pass through here.
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { SluiceError } from '../errors.js';
import { currentThreadCpuMs } from '../native.js';
import { DelayLimit, LagShedder, MIN_REQUESTS, OWN_WAITS } from './admission-laws.js';

export interface AdmissionOptions {
  enabled: boolean;
  /** The I/O thread this controller guards: its gauges carry it as a label (they are per thread, not additive). */
  thread?: number;
  /** Event-loop lag (ms) above which, held for a whole interval, the loop counts as overloaded. */
  lagTargetMs: number;
  /** How long (ms) one event-loop turn may run before it refuses the rest of the requests it reads. */
  turnBudgetMs: number;
  /** Batcher queueing delay (ms) above which, held for a whole interval, the in-flight limit shrinks. */
  queueTargetMs: number;
  /** Bounds of the adaptive in-flight limit. */
  minInFlight: number;
  maxInFlight: number;
  /** Seconds a refused client is told to wait (Retry-After). */
  retryAfterS: number;
}

/** How often the loop is probed, and how long one control interval lasts (at least). */
const PROBE_MS = 5;
const INTERVAL_MS = 50;
/**
 * Turns in a row that must have run past the budget (in wall time, and half of it in the
 * thread's CPU time) before the budget holds. One is a burst, or a thread catching up after a
 * stall (seen refusing at half capacity with one); under overload every turn runs long. (Three
 * made the hold's start later and the accepted p99 no better.)
 */
const LONG_TURNS = 2;
/**
 * A long turn that did less than this share of the previous long turn's work (both in thread
 * CPU time) does not start the hold: the backlog is draining.
 * After a pause, at a utilisation u, each catch-up turn takes about u times the one before
 * (seen at half capacity: 0.2-0.6); under overload each takes as long or longer (seen at 1.5x
 * capacity: 0.84-2.8, the lower ones from turns cut short by descheduling).
 */
const DRAINING = 0.75;
/**
 * A long turn that did this many budgets of work starts the hold on its own (with the streak,
 * not draining): the onset of an overload, where each turn is about twice the one before. Turns
 * just past the budget start it only on a loop that was busy (BUSY_LOOP). At half of capacity
 * on a 2-vCPU machine shared with the load generator, the streaks that started the hold had
 * 1-3.5 ms of work for a 2 ms budget and an event-loop utilisation of 0.29-0.82 since the
 * interval before; at 2x capacity the utilisation was 0.98 (median). (2026-12-06, README
 * *Overload*: without these two rules, at 15,000 req/s 6 of 8 runs had refusals; with them, 2.)
 */
const LARGE_TURN = 2;
const BUSY_LOOP = 0.9;
/**
 * A large turn starts the hold on its own only if the work it found arrived at this rate at
 * least: its CPU time over the previous long turn's wall time (what queued while that turn ran),
 * in CPU ms per wall ms. Descheduling does not move this estimate: work arrives by the wall clock
 * in a stall as in an overload. At 2x capacity it read ~1 a thread on this 2-vCPU machine, at
 * capacity ~0.45-0.55; a thread descheduled mid-turn below capacity finds the next turn large
 * (everything that arrived meanwhile) at the load's own rate (0.2-0.3 at 40-50% of capacity),
 * which started the hold without this (31 refusals in 60 s at 4,500 req/s on the overload
 * bench's busy-inline fixture, 2026-12-06).
 */
const ARRIVING = 0.5;

export type RefusalReason = 'event_loop' | 'turn_budget' | 'in_flight';

export class Admission {
  readonly shedder: LagShedder;
  readonly limiter: DelayLimit;
  /** Requests admitted and not yet finished (every transport). */
  inFlight = 0;
  /** Of those, requests inside the pool's dispatch (a batcher's queue or a worker): see enterPool. */
  pooled = 0;
  admitted = 0;
  readonly refused: Record<RefusalReason, number> = { event_loop: 0, turn_budget: 0, in_flight: 0 };
  /** The one refusal error (thrown often under overload: built once, no stack capture each time). */
  readonly overloaded: SluiceError;
  private credit = 0;
  /** Time (ms) this thread has spent in pool waits that ended with the answer (observeOwnWait), ever. */
  private ownWaitMs = 0;
  /** `ownWaitMs` when the interval in progress began, and when the turn in progress began. */
  private ownWaitAtInterval = 0;
  private ownWaitAtTurn = 0;
  /**
   * The first pool wait of the turn in progress (ms; 0 before one): the time its first request
   * took to be answered, which delays nothing behind it in the turn. A turn is timed without it:
   * a pooled model taking longer than the budget to answer one request is not a queue, and a
   * turn of two such requests would otherwise count as long (seen: a 2 ms model on one worker
   * shared by two I/O threads, whose answers take 2-4 ms, refused 0.1-0.7% of its requests at
   * 60-77% of capacity).
   */
  private turnLeadMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private intervalStart = 0;
  private decidedBefore = 0;
  /** Requests decided so far (the interval's count is this minus `decidedBefore`). */
  private decided = 0;
  /** Whether the last finished interval had MIN_REQUESTS or more, or was OWN_WAITS spent in pool waits. */
  private busyInterval = false;
  /** Whether the last finished interval had MIN_REQUESTS or more by count alone. */
  private manyRequests = false;
  /** When the first request of the turn in progress was decided; `inTurn` false between turns. */
  private turnStart = 0;
  private inTurn = false;
  /** How many turns in a row (that took requests) ran past the budget, up to the one before this. */
  private longTurns = 0;
  /**
   * Until when (performance.now()) turns are held to the budget: an interval past the last
   * streak of LONG_TURNS long turns. Not just while the streak lasts: under shedding one turn
   * that happens to end within the budget would otherwise let the next LONG_TURNS turns take
   * the whole backlog (seen: accepted p99 20-26 ms against 5-6 ms with the hold).
   */
  private shedUntil = 0;
  /** The thread's CPU time (ms) when the turn in progress began; -1 where there is no thread clock. */
  private turnCpuStart = -1;
  /** The CPU time (ms) of the last long turn of the streak in progress (see DRAINING); -1 if not read. */
  private lastLongWork = -1;
  /** The wall time (ms) of the last long turn of the streak in progress (see ARRIVING). */
  private lastLongWall = 0;
  /** Event-loop utilisation marks at the last two interval ends (the window BUSY_LOOP looks at). */
  private eluLast: EventLoopUtilization | undefined;
  private eluBefore: EventLoopUtilization | undefined;
  private readonly turnEnded = (): void => {
    const now = performance.now();
    const budget = this.o.turnBudgetMs;
    this.inTurn = false;
    const waits = this.countsWaits();
    const lead = waits ? this.turnLeadMs : 0;
    const wall = now - this.turnStart - lead;
    if (wall <= budget) {
      this.longTurns = 0;
      return;
    }
    // Long in wall time but not in CPU time: the thread was descheduled or the machine stalled,
    // and what queued meanwhile is gone a turn later. Only work counts towards a streak.
    // A pool wait that ended with its answer is the thread serving its own request, asleep only
    // because the worker does the computing: work too (see observeOwnWait).
    const waited = waits ? this.ownWaitMs - this.ownWaitAtTurn - lead : 0;
    const work = this.turnCpuStart >= 0 ? currentThreadCpuMs() - this.turnCpuStart + waited : wall;
    if (this.turnCpuStart >= 0 && work <= budget / 2) {
      this.longTurns = 0;
      return;
    }
    // Like with like: a turn timed by the wall clock (no thread clock on this platform) is no yardstick.
    const cpu = this.turnCpuStart >= 0 ? work : -1;
    const draining = this.longTurns > 0 && cpu >= 0 && cpu < DRAINING * this.lastLongWork;
    // The rate at which this turn's work arrived, against the last long turn of the streak (read
    // only from the streak's second turn on; unknown without a thread clock: the streak decides).
    const arriving = cpu < 0 || cpu >= ARRIVING * this.lastLongWall;
    this.lastLongWork = cpu;
    this.lastLongWall = wall;
    if (++this.longTurns < LONG_TURNS) return;
    // Once held, every long turn extends the hold (a cut turn's work says nothing of the backlog).
    if (now < this.shedUntil || (!draining && ((work >= LARGE_TURN * budget && arriving) || this.loopBusy()))) this.shedUntil = now + INTERVAL_MS;
  };

  /** Whether the event loop was idle (waiting for I/O) less than 1 - BUSY_LOOP of the time since the interval before last ended. */
  private loopBusy(): boolean {
    // Before two intervals have passed (or without the probe) there is no window: let the streak decide.
    if (this.eluBefore === undefined) return true;
    return performance.eventLoopUtilization(this.eluBefore).utilization >= BUSY_LOOP;
  }

  constructor(readonly o: AdmissionOptions) {
    this.shedder = new LagShedder(o.lagTargetMs);
    this.limiter = new DelayLimit(o.queueTargetMs, o.minInFlight, o.maxInFlight);
    this.overloaded = new SluiceError('OVERLOADED', 'the server is overloaded; retry later');
  }

  /** Starts the event-loop probe (an unref'd timer: it never keeps the process alive). */
  start(): void {
    if (this.timer || !this.o.enabled) return;
    let last = performance.now();
    this.intervalStart = last;
    const probe = () => {
      const now = performance.now();
      this.shedder.observe(Math.max(0, now - last - PROBE_MS));
      last = now;
      this.limiter.inUse(this.pooled);
      // The interval is time, not a count of probes: under overload probes come late, and an
      // interval of ten late probes would last seconds while the queue grows unchecked.
      if (now - this.intervalStart >= INTERVAL_MS) {
        const ownShare = (this.ownWaitMs - this.ownWaitAtInterval) / (now - this.intervalStart);
        this.ownWaitAtInterval = this.ownWaitMs;
        this.intervalStart = now;
        const decided = this.decided - this.decidedBefore;
        this.shedder.endInterval(decided, ownShare);
        this.manyRequests = decided >= MIN_REQUESTS;
        this.busyInterval = this.manyRequests || ownShare >= OWN_WAITS;
        this.decidedBefore = this.decided;
        this.limiter.endInterval();
        this.eluBefore = this.eluLast;
        this.eluLast = performance.eventLoopUtilization();
      }
      this.timer = setTimeout(probe, PROBE_MS);
      this.timer.unref();
    };
    this.timer = setTimeout(probe, PROBE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Decides one request, at its entry. True: admitted, and the caller must call `release()`
   * exactly once when it has been answered (or failed, or its client left). False: refuse it
   * with `overloaded` at once, without reading its body.
   */
  admit(): boolean {
    if (this.o.enabled) {
      this.decided++;
      if (this.overTurnBudget()) {
        this.refused.turn_budget++;
        return false;
      }
      if (this.inFlight >= this.o.maxInFlight) {
        this.refused.in_flight++;
        return false;
      }
      if (this.shedder.accept < 1) {
        this.credit += this.shedder.accept;
        if (this.credit < 1) {
          this.refused.event_loop++;
          return false;
        }
        this.credit -= 1;
      }
    }
    this.inFlight++;
    this.admitted++;
    return true;
  }

  /**
   * Whether the turn in progress has run past its budget (see 3. above). The turn ends at the
   * loop's next check phase: one setImmediate per turn that takes requests, not per request.
   */
  private overTurnBudget(): boolean {
    const now = performance.now();
    if (!this.inTurn) {
      this.inTurn = true;
      this.turnStart = now;
      // Read at every turn, busy or not (~0.1-0.5 µs a turn): the first turn of a burst of
      // traffic comes before the thread counts as busy, and timed by the wall clock it took
      // the load generator's start-up on the same cores (10-25 ms, descheduled) for a long,
      // large turn, which started the hold at the start of every find-max step.
      this.turnCpuStart = currentThreadCpuMs();
      this.ownWaitAtTurn = this.ownWaitMs;
      this.turnLeadMs = 0;
      setImmediate(this.turnEnded);
      return false;
    }
    if (now >= this.shedUntil) return false;
    const busy = this.busyInterval || this.decided - this.decidedBefore >= MIN_REQUESTS
      || this.ownWaitMs - this.ownWaitAtInterval >= OWN_WAITS * INTERVAL_MS;
    return busy && now - this.turnStart - (this.countsWaits() ? this.turnLeadMs : 0) > this.o.turnBudgetMs;
  }

  /**
   * Whether pool waits count in timing turns (see turnEnded): only while the thread takes fewer
   * than MIN_REQUESTS an interval, where they are what tells its few requests from a quiet
   * thread. With more, turns are timed by the CPU clock alone, as the turn rule's thresholds
   * were measured: counting the waits there too held the turns of demo-onnx (each request
   * waiting ~0.1 ms for its pooled answer) from 64-80% of the rate it held before (`npm run
   * loadtest -- --model demo-onnx --find-max`, two I/O threads, six runs each, 2026-12-07).
   */
  private countsWaits(): boolean {
    return !this.manyRequests && this.decided - this.decidedBefore < MIN_REQUESTS;
  }

  release(): void {
    this.inFlight--;
  }

  /**
   * Decides an admitted request that is about to enter the pool's dispatch (its version is
   * pooled), against the adaptive in-flight limit (signal 2). True: it may, and the caller must
   * call `leavePool()` once it is answered. False: refuse it with `overloaded`. Only pooled
   * requests are counted and limited: the queue the limit bounds is theirs, and a request to an
   * inline model adds nothing to it. (Limiting every admitted request at its entry let one slow
   * pooled model over its capacity, whose queueing delay drives the limit to its floor, refuse
   * the requests of an inline model beside it: chaos slow-model, 3 of 11 runs, 2026-12-07.)
   */
  enterPool(): boolean {
    if (this.o.enabled && this.pooled >= this.limiter.limit) {
      this.refused.in_flight++;
      return false;
    }
    this.pooled++;
    return true;
  }

  leavePool(): void {
    this.pooled--;
  }

  /**
   * Time (ms) this thread was held by a pool wait (HTTP's, SLUICE_HTTP_POOL_WAIT_US) that ended
   * with its request's answer: the thread's own requests making its loop late, however few they
   * are (see OWN_WAITS). A wait that ran out is not counted: its model is slower than the wait
   * allows (the batcher stops waiting for it), and the thread was idle, not serving.
   */
  observeOwnWait(ms: number): void {
    if (this.inTurn && this.ownWaitMs === this.ownWaitAtTurn) this.turnLeadMs = ms;
    this.ownWaitMs += ms;
  }

  /** A queueing delay measured inside the engine (a batcher's wait), in ms. */
  observeQueueDelay(ms: number): void {
    this.limiter.observe(ms);
  }

  /** Prometheus text lines (gauges and counters) for /metrics. */
  metricLines(): string[] {
    const t = `{thread="${this.o.thread ?? 0}"}`;
    return [
      '# HELP sluice_admission_requests_total Requests decided by admission control, by decision and reason.',
      '# TYPE sluice_admission_requests_total counter',
      `sluice_admission_requests_total{decision="admitted",reason=""} ${this.admitted}`,
      `sluice_admission_requests_total{decision="refused",reason="event_loop"} ${this.refused.event_loop}`,
      `sluice_admission_requests_total{decision="refused",reason="turn_budget"} ${this.refused.turn_budget}`,
      `sluice_admission_requests_total{decision="refused",reason="in_flight"} ${this.refused.in_flight}`,
      '# HELP sluice_admission_in_flight Requests admitted and not yet answered.',
      '# TYPE sluice_admission_in_flight gauge',
      `sluice_admission_in_flight ${this.inFlight}`,
      '# HELP sluice_admission_in_flight_limit The adaptive limit on requests in flight to pooled models, per I/O thread.',
      '# TYPE sluice_admission_in_flight_limit gauge',
      `sluice_admission_in_flight_limit${t} ${this.limiter.limit}`,
      '# HELP sluice_admission_accept_ratio Fraction of new requests admitted by the event-loop lag controller, per I/O thread.',
      '# TYPE sluice_admission_accept_ratio gauge',
      `sluice_admission_accept_ratio${t} ${this.shedder.accept}`,
      '# HELP sluice_event_loop_lag_seconds Smoothed event-loop lag measured by the admission probe, per I/O thread.',
      '# TYPE sluice_event_loop_lag_seconds gauge',
      `sluice_event_loop_lag_seconds${t} ${this.shedder.lagMs / 1000}`,
    ];
  }
}
