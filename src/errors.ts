/**
 * The error catalogue: every error Sluice reports has a stable `code`, one HTTP status and one
 * gRPC status, fixed here once. Front ends map errors with `httpStatus` / `grpcStatus` and never
 * invent codes. README.md documents every code (a test fails when one is missing).
 */

/** gRPC status codes (numeric values from grpc/status.h). */
export const Grpc = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5,
  ALREADY_EXISTS: 6, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9,
  ABORTED: 10, OUT_OF_RANGE: 11, UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

interface CatalogueEntry {
  http: number;
  grpc: number;
  /** The same request may succeed if sent again later (clients may retry with backoff). */
  retryable: boolean;
  /** One line for the README table. */
  doc: string;
}

export const catalogue = {
  // Transport errors: the request could not be read.
  MALFORMED_REQUEST: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'The body is not valid JSON (or protobuf/msgpack) for this endpoint.' },
  INVALID_UTF8: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A text body or string field is not valid UTF-8.' },
  JSON_TOO_DEEP: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'The JSON nests deeper than the server allows.' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'The Content-Type is not one this endpoint accepts.' },
  BAD_FRAMING: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'The request\'s length is ambiguous (Content-Length repeated or malformed, a Transfer-Encoding other than chunked); the connection is closed after the answer.' },
  PAYLOAD_TOO_LARGE: { http: 413, grpc: Grpc.RESOURCE_EXHAUSTED, retryable: false, doc: 'The body or message is larger than the configured limit; reading stopped there.' },
  ROUTE_NOT_FOUND: { http: 404, grpc: Grpc.UNIMPLEMENTED, retryable: false, doc: 'No such endpoint.' },
  METHOD_NOT_ALLOWED: { http: 405, grpc: Grpc.UNIMPLEMENTED, retryable: false, doc: 'The endpoint exists but not for this HTTP method.' },
  // Request errors: the caller sent something the model cannot take.
  INVALID_ARGUMENT: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A request field is missing or has the wrong type or value.' },
  NAME_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A model name, version or API key name breaks the naming rule (see Names).' },
  ROUTE_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A traffic route is malformed (variants, weights, ranges, assignment, salt, shadows, log_features or owner); the message names the field.' },
  INPUT_MISSING: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'An input the model signature requires was not sent.' },
  INPUT_UNKNOWN: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'An input name is not in the model signature, or is sent twice.' },
  OUTPUT_UNKNOWN: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A requested output is not in the model signature.' },
  DATATYPE_MISMATCH: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: "A tensor's datatype differs from the signature, or its data does not match its datatype." },
  SHAPE_MISMATCH: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: "A tensor's shape does not fit the signature, or its element count differs from its data." },
  INVALID_TENSOR_VALUE: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A tensor element is NaN, infinite, out of its datatype\'s range, or of the wrong JSON type.' },
  BATCH_TOO_LARGE: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A request has more rows than the model\'s max_batch_size.' },
  // Lookup errors.
  MODEL_NOT_FOUND: { http: 404, grpc: Grpc.NOT_FOUND, retryable: false, doc: 'No model of that name is loaded.' },
  VERSION_NOT_FOUND: { http: 404, grpc: Grpc.NOT_FOUND, retryable: false, doc: 'The model has no loaded version of that name.' },
  MODEL_NOT_READY: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: 'The model is loading or unloading.' },
  // Load-shedding and time: retry later.
  OVERLOADED: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: 'The server is overloaded (admission control) or the model\'s queue is full; the request was refused at once.' },
  DEADLINE_EXCEEDED: { http: 504, grpc: Grpc.DEADLINE_EXCEEDED, retryable: true, doc: 'The request deadline passed before the prediction ran; it was dropped, not run.' },
  WORKER_LOST: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: 'The worker thread running the request died; the pool replaced it.' },
  SHUTTING_DOWN: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: 'The engine is draining or stopped.' },
  CIRCUIT_OPEN: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: "The model version's circuit breaker is open after repeated failures and no fallback answered; refused without running." },
  // Model and load errors.
  MODEL_ERROR: { http: 500, grpc: Grpc.INTERNAL, retryable: false, doc: 'The model failed while computing; the message is sanitised.' },
  MANIFEST_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A model manifest is missing a field or has a bad value.' },
  ARTIFACT_INTEGRITY: { http: 422, grpc: Grpc.DATA_LOSS, retryable: false, doc: "An artifact's SHA-256 differs from its manifest; it was not loaded." },
  MODEL_LOAD_FAILED: { http: 422, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'The runtime could not load the model payload.' },
  MODEL_VALIDATION_FAILED: { http: 422, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'A new version failed its smoke test (errors, wrong shapes or non-finite outputs); the serving version is unchanged.' },
  ARENA_EXHAUSTED: { http: 507, grpc: Grpc.RESOURCE_EXHAUSTED, retryable: false, doc: 'The shared tensor arena has no room for another pooled model version (raise SLUICE_ARENA_MB).' },
  // Registry, artifacts and access control.
  UNAUTHENTICATED: { http: 401, grpc: Grpc.UNAUTHENTICATED, retryable: false, doc: 'No valid API key was sent.' },
  PERMISSION_DENIED: { http: 403, grpc: Grpc.PERMISSION_DENIED, retryable: false, doc: 'The API key lacks the scope this action needs.' },
  VERSION_EXISTS: { http: 409, grpc: Grpc.ALREADY_EXISTS, retryable: false, doc: 'That model version is already registered (versions are immutable).' },
  VERSION_IN_USE: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'That live version is the model\'s default or is named by its route: it cannot be unloaded alone.' },
  ROUTE_OWNED: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'The model\'s route belongs to an experiment or a deployment: another owner\'s change or clear of it needs `"force": true` (audited).' },
  ROLLBACK_IMPOSSIBLE: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'There is no earlier production version (or the named one) to roll back to.' },
  REGISTRY_UNAVAILABLE: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: 'The registry database cannot be reached; serving continues from the last known state.' },
  ARTIFACT_UNAVAILABLE: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: 'The artifact store cannot be reached and the artifact is not cached.' },
  STORAGE_FULL: { http: 507, grpc: Grpc.RESOURCE_EXHAUSTED, retryable: true, doc: 'The disk under the data directory (or the database) is full; nothing was stored, and serving continues.' },
  // Feedback (POST /v1/feedback; src/learn).
  FEEDBACK_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A feedback event is malformed: event_id missing or not a string of 1-128 characters, reward missing, non-numeric or non-finite, or a bad unit_id or at.' },
  FEEDBACK_BATCH_TOO_LARGE: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A feedback batch holds more events than SLUICE_FEEDBACK_MAX_BATCH; nothing in it was stored.' },
  EVENT_NOT_FOUND: { http: 404, grpc: Grpc.NOT_FOUND, retryable: false, doc: 'No decision with that event_id was logged (or it was dropped); the feedback was not stored.' },
  FEEDBACK_TOO_LATE: { http: 422, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'The feedback came later than the join window (SLUICE_FEEDBACK_JOIN_WINDOW_MS) after its decision; not stored.' },
  FEEDBACK_STORAGE_FULL: { http: 503, grpc: Grpc.UNAVAILABLE, retryable: true, doc: 'The database is unreachable (or full) and the disk under the local feedback log is full: the feedback was not stored and not acknowledged.' },
  // Off-policy evaluation (POST /v1/admin/models/{m}/evaluate; src/learn/ope.ts).
  OPE_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'An off-policy evaluation cannot run on this input: a propensity outside (0, 1], an action outside the candidate policy\'s arms, a non-finite reward or context, contexts of different lengths, a policy whose probabilities do not sum to 1, or a bad level.' },
  NO_LOGGED_EVENTS: { http: 422, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'No logged bandit decisions with joined feedback match the evaluation (model, version, time range): there is nothing to evaluate on.' },
  EXPERIMENT_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'An experiment definition, weight change or covariate upload is malformed (variants, control, metrics, alpha, minimums, assignment, weights, covariates); the message names the field.' },
  EXPERIMENT_NOT_FOUND: { http: 404, grpc: Grpc.NOT_FOUND, retryable: false, doc: 'No experiment has this name.' },
  EXPERIMENT_EXISTS: { http: 409, grpc: Grpc.ALREADY_EXISTS, retryable: false, doc: 'An experiment with this name exists already (names are never reused: its results stay readable).' },
  EXPERIMENT_RUNNING: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'The model already has a running experiment (one per model: it owns the model\'s route): stop it first.' },
  EXPERIMENT_STOPPED: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'The experiment is stopped: its weights cannot change, and it was promoted already or has no winner to promote without naming a variant.' },
  DEPLOYMENT_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'A deployment definition is malformed (model, kind, candidate, stable, steps, checks, windows, rule, or a setting of another kind); the message names the field.' },
  DEPLOYMENT_NOT_FOUND: { http: 404, grpc: Grpc.NOT_FOUND, retryable: false, doc: 'No deployment has this id.' },
  DEPLOYMENT_ACTIVE: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'The model already has a deployment in progress (one per model: it owns the model\'s route): finish or abort it first.' },
  DEPLOYMENT_FINISHED: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'The deployment is over (promoted, rolled back or aborted), or not in the state the action needs (resume a paused one, pause a running one).' },
  // Alerts (/v1/admin/alerts; src/control/alerts).
  ALERT_INVALID: { http: 400, grpc: Grpc.INVALID_ARGUMENT, retryable: false, doc: 'An alert rule or silence is malformed (name, source, labels, operator, threshold, for_ms, severity, summary, matchers, ends_at, comment), or a ?state= filter is unknown; the message names the field.' },
  ALERT_NOT_FOUND: { http: 404, grpc: Grpc.NOT_FOUND, retryable: false, doc: 'No silence has this id.' },
  ALERT_RULE_EXISTS: { http: 409, grpc: Grpc.ALREADY_EXISTS, retryable: false, doc: 'An alert rule with this name exists already (built-in rule names are taken too).' },
  // The dashboard (GET /dashboard; src/service/dashboard.ts).
  DASHBOARD_FULL: { http: 503, grpc: Grpc.RESOURCE_EXHAUSTED, retryable: true, doc: 'The dashboard already has SLUICE_DASHBOARD_MAX_VIEWERS live streams open on this server; close one or retry later.' },
  // Learned state (src/learn): between replicas, never sent to clients.
  DELTAS_PRUNED: { http: 409, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'A learner replica fell so far behind that deltas it needs were pruned after checkpoints included them; it restores the latest checkpoint.' },
  CONFIG_INVALID: { http: 500, grpc: Grpc.FAILED_PRECONDITION, retryable: false, doc: 'A configuration value is invalid (reported at start-up).' },
  INTERNAL: { http: 500, grpc: Grpc.INTERNAL, retryable: false, doc: 'An unexpected internal error.' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(catalogue, code);
}

/**
 * Whether `e` (or an error in its `cause` chain) says a disk is full: ENOSPC/EDQUOT from the
 * file system, SQLSTATE 53100 (disk_full) from PostgreSQL or PGlite.
 */
export function isStorageFull(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c !== null && typeof c === 'object' && depth < 8; c = (c as { cause?: unknown }).cause, depth++) {
    const code = (c as { code?: unknown }).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === '53100') return true;
  }
  return false;
}

/** An error with a catalogue code. `message` is safe to show to clients. */
export class SluiceError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
  }

  get httpStatus(): number {
    return catalogue[this.code].http;
  }

  get grpcStatus(): number {
    return catalogue[this.code].grpc;
  }

  get retryable(): boolean {
    return catalogue[this.code].retryable;
  }

  /** The `{code, message}` form that crosses thread boundaries and goes into response bodies. */
  toJSON(): SerializedError {
    return { code: this.code, message: this.message };
  }
}

export interface SerializedError {
  code: string;
  message: string;
}

/** Rebuilds an error that crossed a thread boundary as `{code, message}`. */
export function fromSerialized(e: SerializedError): SluiceError {
  return new SluiceError(isErrorCode(e.code) ? e.code : 'INTERNAL', e.message);
}

/**
 * Converts anything thrown into a SluiceError. Unknown errors keep their detail only in `cause`
 * (for logs): their message may contain paths or internals, so clients get `fallbackMessage`.
 */
export function toSluiceError(err: unknown, fallback: ErrorCode = 'INTERNAL', fallbackMessage = 'internal error'): SluiceError {
  if (err instanceof SluiceError) return err;
  return new SluiceError(fallback, fallbackMessage, { cause: err });
}
