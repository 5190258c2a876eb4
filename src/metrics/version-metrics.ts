/**
 * Latency and count statistics of one model version, in HDR histograms (microseconds; three
 * significant digits from 1 us to 60 s), recorded on the I/O thread.
 */
import type { BreakerState } from '../service/resilience/circuit-breaker.js';
import { fastRecordable, recordFast } from './fast-record.js';
import { histogram, LATENCY_MAX_US as MAX_US, latencyUs } from './latency-histogram.js';
import { VersionWindow } from './windows.js';

/** Milliseconds (fractional, from performance.now) as whole nanoseconds. */
function nanos(ms: number): number {
  return Math.round(ms * 1e6);
}

export class VersionMetrics {
  /** From the engine accepting the request to its answer. */
  readonly latency = histogram(MAX_US);
  /** Time the request waited in the batcher before its batch was sent (pool only). */
  readonly queue = histogram(MAX_US);
  /** Time computing its batch (pool: send to completion; inline: the runtime call). */
  readonly compute = histogram(MAX_US);
  /** Rows per execution. */
  readonly batchRows = histogram(1 << 24);
  success = 0;
  failure = 0;
  /** Rows predicted by successful requests. */
  rows = 0;
  executions = 0;
  /**
   * Per-request figures for the Open Inference Protocol statistics extension, as Triton keeps
   * them: every executed request counts once in `queued` and `computed`, and adds the whole
   * time of the execution it was part of to `computeNs` (a 64-request batch of 2 ms adds
   * 64 x 2 ms), so queue, compute_input, compute_infer and compute_output share one count.
   */
  queued = 0;
  computed = 0;
  /**
   * Totals in whole nanoseconds: each observation is rounded once as it is recorded, so the
   * totals are integer sums, exact in any order (below 2^53 ns, ~104 days of summed time), and
   * the I/O threads' totals merge (src/metrics/snapshot.ts) to exactly what one thread recording
   * everything would hold.
   */
  successNs = 0;
  failureNs = 0;
  queueNs = 0;
  computeNs = 0;
  /** Wall-clock ms of the last completed inference (0 = never). */
  lastInference = 0;
  /** Executions by batch size, for OIP batch_stats. */
  readonly executionsByRows = new Map<number, { count: number; ns: number }>();
  /** Resilience (src/service/resilience), present only for versions with those policies. */
  readonly resilience = new ResilienceCounters();

  /**
   * Recent requests in time buckets (windows.ts), for controllers that must decide from the
   * last minutes rather than lifetime totals; absent only where nothing records (`windowed:
   * false`, a benchmark's baseline).
   */
  readonly window: VersionWindow | undefined;

  constructor(readonly model: string, readonly version: string, opts: { windowed?: boolean } = {}) {
    this.window = opts.windowed === false ? undefined : new VersionWindow();
  }

  /**
   * A successful request, answered at wall-clock `nowMs`: the data plane passes the time from
   * the clock reading that ended its latency (wallClock in data-plane.ts), so the window and
   * lastInference cost no clock reading of their own.
   */
  observeSuccess(latencyMs: number, rows: number, nowMs = Date.now()): void {
    this.success++;
    this.rows += rows;
    this.successNs += nanos(latencyMs);
    const us = latencyUs(latencyMs);
    this.latency.recordValue(us);
    // Whole ms, as Triton's statistics give it (uint64 on gRPC): nowMs has a fraction.
    this.lastInference = Math.floor(nowMs);
    this.window?.recordSuccess(us, nowMs);
  }

  /** A failed request at `nowMs`; `code` is the SluiceError code its client got. */
  observeFailure(latencyMs: number, code: string, nowMs = Date.now()): void {
    this.failure++;
    this.failureNs += nanos(latencyMs);
    this.window?.recordFailure(code, nowMs);
  }

  /** One execution of `rows` rows, for `requests` requests, that took `computeMs`. */
  observeExecution(rows: number, computeMs: number, requests: number): void {
    this.executions++;
    this.computed += requests;
    this.batchRows.recordValue(Math.max(1, rows));
    this.compute.recordValue(Math.max(1, Math.round(computeMs * 1000)));
    const ns = nanos(computeMs);
    this.computeNs += ns * requests;
    let s = this.executionsByRows.get(rows);
    if (!s) this.executionsByRows.set(rows, (s = { count: 0, ns: 0 }));
    s.count++;
    s.ns += ns;
  }

  /** How long one request waited in the batcher. */
  observeQueue(queueMs: number): void {
    this.queued++;
    this.queue.recordValue(Math.max(1, Math.round(queueMs * 1000)));
    this.queueNs += nanos(queueMs);
  }

  /**
   * One request computed inline on the I/O thread: it never waits in a queue (counted with 0 ns,
   * so that queue counts every executed request, as Triton's does) and is its own execution.
   */
  observeInline(rows: number, computeMs: number): void {
    this.queued++;
    this.observeExecution(rows, computeMs, 1);
  }
}

/**
 * Latency of the answers a route chose for one (model, variant, version), recorded like a
 * version's (from the engine accepting the request to its answer). Routes come and go, the
 * histogram stays: a variant keeps its series across route changes, as a version does.
 */
export class RoutedMetrics {
  readonly latency = fastRecordable(histogram(MAX_US));

  constructor(readonly model: string, readonly variant: string, readonly version: string) {}

  /**
   * On the request path: no allocation (the counts array exists; only a value past 60 s grows
   * it) and ~5 ns instead of recordValue's ~27 (fast-record.ts).
   */
  observe(latencyMs: number): void {
    recordFast(this.latency, latencyUs(latencyMs));
  }
}

/** Every version's metrics plus counts of errors by code (including requests that never reached a model). */
export class Metrics {
  private readonly versions = new Map<string, VersionMetrics>();
  private readonly routed = new Map<string, RoutedMetrics>();
  readonly errors = new Map<string, number>();

  of(model: string, version: string): VersionMetrics {
    const key = model + '\0' + version;
    let m = this.versions.get(key);
    if (!m) {
      m = new VersionMetrics(model, version);
      this.versions.set(key, m);
    }
    return m;
  }

  all(): VersionMetrics[] {
    return [...this.versions.values()];
  }

  /** A version's metrics if it has any (a reader that must not make empty ones). */
  find(model: string, version: string): VersionMetrics | undefined {
    return this.versions.get(model + '\0' + version);
  }

  findRouted(model: string, variant: string, version: string): RoutedMetrics | undefined {
    return this.routed.get(model + '\0' + variant + '\0' + version);
  }

  /** A route's variant (made when a route naming it is installed, not per request). */
  routedOf(model: string, variant: string, version: string): RoutedMetrics {
    const key = model + '\0' + variant + '\0' + version;
    let m = this.routed.get(key);
    if (!m) {
      m = new RoutedMetrics(model, variant, version);
      this.routed.set(key, m);
    }
    return m;
  }

  allRouted(): RoutedMetrics[] {
    return [...this.routed.values()];
  }

  countError(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }
}

export const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half_open'];

/** How many breakers (one per I/O thread) are in each state. */
export type BreakerTally = Record<BreakerState, number>;

/** Circuit breaker, fallback and prediction cache figures of one version. */
export class ResilienceCounters {
  /** The breaker's state now, when the version has a breaker (on the thread that owns it). */
  breakerState: (() => BreakerState) | undefined;
  /**
   * Merged metrics only (src/metrics/snapshot.ts): each I/O thread has its own breaker, so the
   * whole server has one state per thread; this counts the threads in each state.
   */
  breakerThreads: BreakerTally | undefined;
  /** Breaker transitions by "from>to". */
  readonly transitions = new Map<string, number>();
  /** Answers served by a fallback, by "policy>reason". */
  readonly fallbacks = new Map<string, number>();
  /** Prediction cache lookups and evictions (over every load of this version). */
  cacheHits = 0;
  cacheMisses = 0;
  cacheEvictions = 0;
  /** The cache's size now, when the version has a cache (merged metrics: summed over threads). */
  cacheSize: (() => { entries: number; bytes: number }) | undefined;

  /**
   * Breakers in each state now: this thread's own breaker (1 for its state, 0 for the others)
   * or, for merged metrics, the threads in each state; undefined when the version has none.
   */
  breakersByState(): BreakerTally | undefined {
    if (this.breakerThreads) return this.breakerThreads;
    if (!this.breakerState) return undefined;
    const now = this.breakerState();
    return { closed: now === 'closed' ? 1 : 0, open: now === 'open' ? 1 : 0, half_open: now === 'half_open' ? 1 : 0 };
  }

  transition(from: string, to: string): void {
    const k = from + '>' + to;
    this.transitions.set(k, (this.transitions.get(k) ?? 0) + 1);
  }

  fallback(policy: string, reason: string): void {
    const k = policy + '>' + reason;
    this.fallbacks.set(k, (this.fallbacks.get(k) ?? 0) + 1);
  }
}
