/**
 * The resilient request path of a version that has a fallback, circuit breaker or prediction
 * cache in its manifest. The engine calls `guardedInfer` in place of its plain run-and-answer
 * for such versions only: a version without those policies has no guard and pays nothing.
 *
 * Order: cache lookup (a hit is an answer this version computed, served even while its breaker
 * is open) -> breaker admission -> run (bounded by the request's deadline: a hanging model is
 * a deadline miss) -> on success, record and cache; on a model failure (MODEL_ERROR,
 * WORKER_LOST, DEADLINE_EXCEEDED, INTERNAL), record and fall back. Errors that say nothing
 * about the model (OVERLOADED, SHUTTING_DOWN) are returned as they are and do not move the
 * breaker. A fallback that cannot answer gives the original error (or CIRCUIT_OPEN).
 */
import { SluiceError, type ErrorCode } from '../../errors.js';
import { log } from '../../log.js';
import type { Manifest } from '../../model/manifest.js';
import type { FallbackPolicy } from '../../model/policies.js';
import type { Tensor } from '../../model/tensor.js';
import type { ResilienceCounters } from '../../metrics/version-metrics.js';
import type { BatchTensor } from '../../worker/runtimes/index.js';
import type { InferRequest, InferResponse } from '../types.js';
import { CircuitBreaker, CLOSED_CALL, REFUSED, type Ticket } from './circuit-breaker.js';
import { DefaultOutputs, type FallbackReason } from './fallback.js';
import { PredictionCache } from './prediction-cache.js';

/** Errors that count against the model (and may be answered by a fallback). */
const MODEL_FAILURES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['MODEL_ERROR', 'WORKER_LOST', 'DEADLINE_EXCEEDED', 'INTERNAL']);

/** A version's breaker, cache and fallback, built from its manifest at load. */
export class VersionGuard {
  readonly breaker: CircuitBreaker | undefined;
  readonly cache: PredictionCache | undefined;
  readonly fallback: FallbackPolicy | undefined;
  readonly defaults: DefaultOutputs | undefined;
  /** Pending runs are cut off at the request's deadline (a breaker or fallback wants to know). */
  readonly boundsDeadline: boolean;

  /** A guard for `m`, or undefined when it has none of the policies (the plain path). */
  static of(m: Manifest, counters: ResilienceCounters): VersionGuard | undefined {
    const p = m.policies;
    return p.fallback || p.circuitBreaker || p.cache ? new VersionGuard(m, counters) : undefined;
  }

  private constructor(m: Manifest, readonly counters: ResilienceCounters) {
    const p = m.policies;
    this.fallback = p.fallback;
    this.defaults = p.fallback?.policy === 'default' ? new DefaultOutputs(m) : undefined;
    if (p.circuitBreaker) {
      const b = new CircuitBreaker(p.circuitBreaker, (from, to) => {
        counters.transition(from, to);
        log.info('engine: circuit breaker', { model: m.name, version: m.version, from, to });
      });
      this.breaker = b;
      counters.breakerState = () => b.current;
    }
    if (p.cache) {
      const c = new PredictionCache(p.cache, () => counters.cacheEvictions++);
      this.cache = c;
      counters.cacheSize = () => ({ entries: c.entries, bytes: c.bytes });
    }
    this.boundsDeadline = p.fallback !== undefined || p.circuitBreaker !== undefined;
  }

  /** The version is freed: drop cached answers. */
  dispose(): void {
    this.cache?.clear();
  }
}

export interface GuardedVersion {
  readonly manifest: Manifest;
  readonly guard?: VersionGuard;
}

/** What the engine lends the guarded path (its own run / answer / bookkeeping). */
export interface GuardHost<V extends GuardedVersion> {
  /** Runs `v` (Engine.run); `blockUs` and `admitted` as in InferRequest. */
  run(v: V, ordered: Tensor[], rows: number, deadline: number, blockUs: number, admitted: boolean): { outs: BatchTensor[]; end: number } | Promise<BatchTensor[]>;
  /** Records a success on `v` and builds its answer. */
  answer(v: V, req: InferRequest, outs: BatchTensor[], rows: number, selected: number[] | undefined, t0: number, end: number): InferResponse;
  /** Builds an answer without recording anything (default outputs). */
  respond(v: V, req: InferRequest, outs: BatchTensor[], selected: number[] | undefined): InferResponse;
  /** Records a failure on `v`; the coded, sanitised error. */
  failure(v: V, e: unknown, t0: number): SluiceError;
  /** The request checked against another version's signature (throws when it does not fit). */
  check(v: V, req: InferRequest): { ordered: Tensor[]; rows: number; selected: number[] | undefined };
  /** The version the last swap of v's model retired and kept for this policy. */
  previous(v: V): V | undefined;
  /** The active version of a model. */
  active(model: string): V | undefined;
}

/** Rejects with DEADLINE_EXCEEDED at `deadline` unless `p` settles first (p keeps running). */
function withDeadline<T>(p: Promise<T>, deadline: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new SluiceError('DEADLINE_EXCEEDED', 'the model did not answer before the deadline')), Math.max(0, deadline - performance.now()));
    p.then((v) => {
      clearTimeout(timer);
      resolve(v);
    }, (e: unknown) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** A checked request on a guarded version: the answer, at once when it is ready, or a promise. */
export function guardedInfer<V extends GuardedVersion>(
  host: GuardHost<V>, v: V, req: InferRequest, ordered: Tensor[], rows: number, selected: number[] | undefined, deadline: number, t0: number,
): InferResponse | Promise<InferResponse> {
  const g = v.guard!;
  // `noCache`: requests whose answer must really be computed (e.g. a later routed request whose
  // bandit or experiment decision is logged with it) neither read nor fill the cache.
  const cache = req.noCache === true ? undefined : g.cache;
  let key: string | undefined;
  if (cache) {
    key = cache.key(ordered);
    const hit = cache.get(key);
    if (hit) {
      g.counters.cacheHits++;
      return host.answer(v, req, hit, rows, selected, t0, performance.now());
    }
    g.counters.cacheMisses++;
  }
  const ticket: Ticket = g.breaker ? g.breaker.admit() : CLOSED_CALL;
  if (ticket === REFUSED) {
    const m = v.manifest;
    const open = new SluiceError('CIRCUIT_OPEN', `model ${m.name} version ${m.version} is failing: its circuit breaker is open`);
    return fallBack(host, v, req, rows, selected, deadline, t0, 'circuit_open', open);
  }
  const ok = (outs: BatchTensor[], end: number): InferResponse => {
    g.breaker?.record(ticket, true);
    if (key !== undefined) cache!.set(key, outs);
    return host.answer(v, req, outs, rows, selected, t0, end);
  };
  const failed = (e: unknown): InferResponse | Promise<InferResponse> => {
    const err = host.failure(v, e, t0);
    if (!MODEL_FAILURES.has(err.code)) {
      g.breaker?.cancel(ticket);
      return Promise.reject(err);
    }
    g.breaker?.record(ticket, false);
    return fallBack(host, v, req, rows, selected, deadline, t0, err.code === 'DEADLINE_EXCEEDED' ? 'deadline' : 'error', err);
  };
  let r: ReturnType<GuardHost<V>['run']>;
  try {
    r = host.run(v, ordered, rows, deadline, req.blockUs ?? 0, req.admitted === true);
  } catch (e) {
    return failed(e);
  }
  if (!(r instanceof Promise)) return ok(r.outs, r.end);
  const bounded = g.boundsDeadline && deadline !== Infinity ? withDeadline(r, deadline) : r;
  return bounded.then((outs) => ok(outs, performance.now()), failed);
}

/** Whether `source` gives every output of `m` with the same datatype and shape (clients see no difference). */
function sameOutputs(m: Manifest, source: Manifest): boolean {
  return m.signature.outputs.every((o) => source.signature.outputs.some((s) => s.name === o.name && s.datatype === o.datatype && s.shape.length === o.shape.length && s.shape.every((d, i) => d === o.shape[i])));
}

/** Answers a failed (or refused) request from the version's fallback policy, or gives `err`. */
function fallBack<V extends GuardedVersion>(
  host: GuardHost<V>, v: V, req: InferRequest, rows: number, selected: number[] | undefined, deadline: number, t0: number, reason: FallbackReason, err: SluiceError,
): InferResponse | Promise<InferResponse> {
  const g = v.guard!;
  const f = g.fallback;
  const refuse = (): Promise<never> => {
    // A refusal by the open breaker has not been counted as this version's failure yet.
    if (reason === 'circuit_open') host.failure(v, err, t0);
    return Promise.reject(err);
  };
  if (!f || f.policy === 'fail_fast') return refuse();
  const mark = (res: InferResponse): InferResponse => {
    g.counters.fallback(f.policy, reason);
    res.fallback = f.policy;
    res.fallbackReason = reason;
    return res;
  };
  if (f.policy === 'default') return mark(host.respond(v, req, g.defaults!.build(rows), selected));
  const source = f.policy === 'previous_version' ? host.previous(v) : host.active(f.model!);
  if (!source) return refuse();
  let checked: ReturnType<GuardHost<V>['check']> | undefined;
  try {
    if (sameOutputs(v.manifest, source.manifest)) checked = host.check(source, req);
  } catch {
    // The request does not fit the source's inputs: no fallback.
  }
  if (!checked) {
    log.warn('engine: fallback signature does not fit', { model: v.manifest.name, version: v.manifest.version, fallback: `${source.manifest.name}@${source.manifest.version}` });
    return refuse();
  }
  // The source's own breaker is respected (a failing fallback is not hammered); its own
  // fallback is not followed (no chains, no cycles).
  const sb = source.guard?.breaker;
  const ticket = sb ? sb.admit() : CLOSED_CALL;
  if (ticket === REFUSED) return refuse();
  // After a deadline miss the fallback gets `budget_ms` more; otherwise the request's deadline.
  const until = deadline === Infinity ? Infinity : Math.max(deadline, performance.now() + f.budgetMs);
  const done = (outs: BatchTensor[], end: number): InferResponse => {
    sb?.record(ticket, true);
    return mark(host.answer(source, req, outs, checked.rows, checked.selected, t0, end));
  };
  const lost = (e: unknown): Promise<never> => {
    const fe = host.failure(source, e, t0);
    if (MODEL_FAILURES.has(fe.code)) sb?.record(ticket, false);
    else sb?.cancel(ticket);
    return refuse();
  };
  let r: ReturnType<GuardHost<V>['run']>;
  try {
    r = host.run(source, checked.ordered, checked.rows, until, req.blockUs ?? 0, req.admitted === true);
  } catch (e) {
    return lost(e);
  }
  if (!(r instanceof Promise)) return done(r.outs, r.end);
  const bounded = until !== Infinity ? withDeadline(r, until) : r;
  return bounded.then((outs) => done(outs, performance.now()), lost);
}
