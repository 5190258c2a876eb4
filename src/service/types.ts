/** The transport-agnostic request and response shapes every front end maps to and from. */
import type { DispatchMode, ModelKind, TensorSpec } from '../model/manifest.js';
import type { Tensor } from '../model/tensor.js';

export interface InferRequest {
  model: string;
  /** A loaded version; the active one when omitted. */
  version?: string;
  /** Echoed in the response (OIP request id). */
  id?: string;
  inputs: Tensor[];
  /** Output names to return; all when omitted or empty. */
  outputs?: string[];
  /** Absolute deadline on the performance.now() clock (ms); expired work is dropped. */
  deadline?: number;
  /**
   * How long (us) the calling thread may block for a pooled model's answer so that it is ready
   * before the call returns (0 or absent: never block). HTTP/1.1 sets it: uWebSockets.js closes
   * a connection whose next pipelined request it parses while an earlier answer is pending.
   */
  blockUs?: number;
  /**
   * Passed admission control at its transport's entry (src/service/admission.ts): a request to
   * a pooled model is then also held to the adaptive in-flight limit as it enters the pool.
   * Requests made through the engine's API directly (an embedding program, shadows) are not.
   */
  admitted?: boolean;
  /**
   * Bypass the model's prediction cache (neither read nor filled). For answers that must be
   * computed now: a routed request whose bandit or experiment decision is logged with its answer
   * must set it, so that no decision is ever made from a cached answer.
   */
  noCache?: boolean;
  /**
   * The unit (user, session, device) the request is for: a hash route assigns the same unit the
   * same variant. From `parameters.unit_id` or the `Sluice-Unit-Id` header; absent: per request.
   */
  unitId?: string;
}

/** The earlier of two optional deadlines (undefined: none). */
export function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

export interface InferResponse {
  model: string;
  /** The version that computed these outputs. */
  version: string;
  id?: string;
  outputs: Tensor[];
  /**
   * Set when a fallback produced this answer instead of the requested version: the policy
   * (`default`, `previous_version`, `model`); `model`/`version` then name what computed it.
   * Front ends send them as `parameters.fallback` and `parameters.fallback_reason`.
   */
  fallback?: string;
  /** Why: `error`, `deadline` or `circuit_open`. */
  fallbackReason?: string;
  /**
   * Set on an answer that a route chose (an unversioned request to a model with a route in
   * force): front ends send it as `parameters.event_id`, `variant` and `propensity`, and
   * feedback names the decision by its event id.
   */
  decision?: {
    eventId: string;
    /** The route's variant ('' for a bandit's decision that no route chose). */
    variant: string;
    propensity: number;
    /** A bandit's arm (of the first row). */
    action?: number;
    /** A bandit's decisions of a batch of several rows: one event id per row. */
    eventIds?: string[];
  };
  /** Versions learned online: updates applied to the state that computed this answer. */
  state?: number;
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface ModelConfig {
  name: string;
  version: string;
  platform: string;
  kind: ModelKind;
  maxBatchSize: number;
  maxQueueDelayUs: number;
  maxQueueSize: number;
  dispatch: DispatchMode;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface RepositoryModel {
  name: string;
  version?: string;
  state: 'READY' | 'UNAVAILABLE' | 'LOADING';
  reason: string;
}

export interface VersionStats {
  version: string;
  success: number;
  failure: number;
  rows: number;
  /** Pool batches (inline requests count as one execution each). */
  executions: number;
  overloaded: number;
  expired: number;
}
