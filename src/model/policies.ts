/**
 * Per-model resilience policies from model.json: what to answer when the model fails
 * (`fallback`), when to stop calling it for a while (`circuit_breaker`), and whether to reuse
 * answers to identical requests (`cache`). Checked here, once, at load; all optional.
 */
import { SluiceError } from '../errors.js';
import type { Signature } from './manifest.js';
import { arrayClassOf } from './tensor.js';

export const FALLBACK_POLICIES = ['default', 'previous_version', 'model', 'fail_fast'] as const;
export type FallbackPolicyName = (typeof FALLBACK_POLICIES)[number];

export interface FallbackPolicy {
  policy: FallbackPolicyName;
  /** `default`: per output, the values of ONE row (repeated for every row of the request). */
  outputs?: Record<string, number[]>;
  /** `model`: the model whose active version answers instead. */
  model?: string;
  /**
   * `previous_version` / `model` after a deadline miss: how long the fallback may take beyond
   * the missed deadline (ms). A default output needs no time.
   */
  budgetMs: number;
}

export interface CircuitBreakerPolicy {
  /** Outcomes remembered: the last `window` calls. */
  window: number;
  /** No verdict with fewer calls than this in the window. */
  minCalls: number;
  /** Opens when failures / calls in the window reach this. */
  failureRate: number;
  /** How long it stays open before letting probes through (ms). */
  openMs: number;
  /** Probe requests in flight at once while half-open; the rest are answered as if open. */
  halfOpenProbes: number;
  /** Successful probes in a row that close it again. */
  closeAfter: number;
}

export interface CachePolicy {
  maxEntries: number;
  /** Bound on keys + outputs, in bytes (0: only the entry count bounds it). */
  maxBytes: number;
  /** Entry lifetime (ms; 0: until evicted). */
  ttlMs: number;
}

export interface Policies {
  fallback?: FallbackPolicy;
  circuitBreaker?: CircuitBreakerPolicy;
  cache?: CachePolicy;
}

function bad(where: string, what: string): SluiceError {
  return new SluiceError('MANIFEST_INVALID', `${where}: ${what}`);
}

function obj(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(where, 'must be an object');
  return v as Record<string, unknown>;
}

function int(o: Record<string, unknown>, key: string, where: string, dflt: number, min: number, max: number): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw bad(`${where}.${key}`, `must be an integer in [${min}, ${max}]`);
  return v;
}

function onlyKeys(o: Record<string, unknown>, keys: string[], where: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw bad(`${where}.${k}`, `unknown setting (expected one of ${keys.join(', ')})`);
}

/** Elements in one row of an output: the product of its dimensions after the batch one. */
export function rowElements(shape: readonly number[], batched: boolean): number {
  return (batched ? shape.slice(1) : shape).reduce((a, d) => a * Math.max(d, 1), 1);
}

function fallback(raw: unknown, where: string, signature: Signature, batched: boolean, self: string): FallbackPolicy {
  const o = obj(raw, where);
  onlyKeys(o, ['policy', 'outputs', 'model', 'budget_ms'], where);
  const policy = o.policy;
  if (typeof policy !== 'string' || !(FALLBACK_POLICIES as readonly string[]).includes(policy)) {
    throw bad(`${where}.policy`, `must be one of ${FALLBACK_POLICIES.join(', ')}`);
  }
  const out: FallbackPolicy = { policy: policy as FallbackPolicyName, budgetMs: int(o, 'budget_ms', where, 50, 0, 60_000) };
  if (policy === 'default') {
    const outs = obj(o.outputs, `${where}.outputs`);
    out.outputs = {};
    for (const spec of signature.outputs) {
      const w = `${where}.outputs.${spec.name}`;
      const v = outs[spec.name];
      if (spec.shape.slice(batched ? 1 : 0).some((d) => d === -1)) throw bad(w, 'a default needs fixed dimensions after the batch one');
      const n = rowElements(spec.shape, batched);
      if (!Array.isArray(v) || v.length !== n || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
        throw bad(w, `must be ${n} finite number(s): one row of ${spec.datatype} [${spec.shape}]`);
      }
      // The values must survive the datatype unchanged (no 1.5 as INT32, no 300 as UINT8).
      const Ctor = arrayClassOf(spec.datatype)!;
      const probe = new Ctor(n);
      if (probe instanceof BigInt64Array || probe instanceof BigUint64Array) {
        if (v.some((x) => !Number.isSafeInteger(x))) throw bad(w, `values must be integers for ${spec.datatype}`);
      } else {
        (probe as Float64Array).set(v as number[]);
        if (spec.datatype !== 'FP32' && v.some((x, i) => probe[i] !== x)) throw bad(w, `values do not fit ${spec.datatype}`);
      }
      out.outputs[spec.name] = v as number[];
    }
    for (const k of Object.keys(outs)) if (!signature.outputs.some((s) => s.name === k)) throw bad(`${where}.outputs.${k}`, 'is not an output of the signature');
  } else if (o.outputs !== undefined) {
    throw bad(`${where}.outputs`, 'only the "default" policy takes outputs');
  }
  if (policy === 'model') {
    if (typeof o.model !== 'string' || o.model === '') throw bad(`${where}.model`, 'must name the model that answers instead');
    if (o.model === self) throw bad(`${where}.model`, 'must be another model (use "previous_version" for this one)');
    out.model = o.model;
  } else if (o.model !== undefined) {
    throw bad(`${where}.model`, 'only the "model" policy takes a model');
  }
  return Object.freeze(out);
}

function breaker(raw: unknown, where: string): CircuitBreakerPolicy {
  const o = obj(raw, where);
  onlyKeys(o, ['window', 'min_calls', 'failure_rate', 'open_ms', 'half_open_probes', 'close_after'], where);
  const window = int(o, 'window', where, 20, 1, 10_000);
  const minCalls = int(o, 'min_calls', where, Math.min(10, window), 1, window);
  const rate = o.failure_rate ?? 0.5;
  if (typeof rate !== 'number' || !(rate > 0 && rate <= 1)) throw bad(`${where}.failure_rate`, 'must be a number in (0, 1]');
  return Object.freeze({
    window,
    minCalls,
    failureRate: rate,
    openMs: int(o, 'open_ms', where, 5_000, 1, 3_600_000),
    halfOpenProbes: int(o, 'half_open_probes', where, 1, 1, 1_000),
    closeAfter: int(o, 'close_after', where, 3, 1, 1_000),
  });
}

function cache(raw: unknown, where: string): CachePolicy {
  const o = obj(raw, where);
  onlyKeys(o, ['max_entries', 'max_bytes', 'ttl_ms'], where);
  const maxEntries = int(o, 'max_entries', where, 10_000, 1, 10_000_000);
  const maxBytes = int(o, 'max_bytes', where, 0, 0, 2 ** 40);
  return Object.freeze({ maxEntries, maxBytes, ttlMs: int(o, 'ttl_ms', where, 0, 0, 7 * 24 * 3_600_000) });
}

/** Reads `fallback`, `circuit_breaker` and `cache` of a model.json object. */
export function parsePolicies(o: Record<string, unknown>, where: string, name: string, signature: Signature, batched: boolean): Policies {
  const p: Policies = {};
  if (o.fallback !== undefined) p.fallback = fallback(o.fallback, `${where}.fallback`, signature, batched, name);
  if (o.circuit_breaker !== undefined) p.circuitBreaker = breaker(o.circuit_breaker, `${where}.circuit_breaker`);
  if (o.cache !== undefined) p.cache = cache(o.cache, `${where}.cache`);
  return p;
}

/** The policies in their on-disk (snake_case) form. */
export function policiesToJSON(p: Policies): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (p.fallback) {
    const f = p.fallback;
    out.fallback = { policy: f.policy, ...(f.outputs ? { outputs: f.outputs } : {}), ...(f.model ? { model: f.model } : {}), budget_ms: f.budgetMs };
  }
  if (p.circuitBreaker) {
    const b = p.circuitBreaker;
    out.circuit_breaker = { window: b.window, min_calls: b.minCalls, failure_rate: b.failureRate, open_ms: b.openMs, half_open_probes: b.halfOpenProbes, close_after: b.closeAfter };
  }
  if (p.cache) out.cache = { max_entries: p.cache.maxEntries, max_bytes: p.cache.maxBytes, ttl_ms: p.cache.ttlMs };
  return out;
}
