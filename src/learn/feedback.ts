/**
 * Feedback: the outcome (reward) of a decision, reported later by the client with the decision's
 * event id. This file holds the wire shapes and their parsing; feedback-intake.ts stores them.
 *
 * Body: one event `{"event_id", "reward", "unit_id"?, "at"?}` or a batch `{"events": [...]}`.
 * `at` is when the outcome happened, in ms since the epoch (the time received when absent); the
 * join window is measured from the decision's time to it.
 */
import { SluiceError, type ErrorCode } from '../errors.js';
import type { Decision } from './decision.js';
import { isValidEventId, isValidUnitId, MAX_EVENT_ID_LENGTH } from './event-id.js';

export interface FeedbackInput {
  eventId: string;
  reward: number;
  unitId?: string;
  /** When the outcome happened, ms since the epoch. */
  at?: number;
}

export type FeedbackOutcome =
  | { event_id: string; status: 'accepted' | 'duplicate' }
  | { event_id: string | null; error: { code: string; message: string } };

/** A stored feedback event joined to its decision, as subscribers get it. */
export interface JoinedFeedback {
  eventId: string;
  reward: number;
  /** When the outcome happened (ms). */
  at: number;
  decision: Decision;
}

/** A per-item refusal; carries the item's event id when it had a readable one. */
export class FeedbackItemError extends SluiceError {
  constructor(code: ErrorCode, message: string, readonly eventId: string | null) {
    super(code, message);
  }
}

export function errorOutcome(eventId: string | null, e: SluiceError): FeedbackOutcome {
  return { event_id: eventId, error: { code: e.code, message: e.message } };
}

const ITEM_KEYS = new Set(['event_id', 'reward', 'unit_id', 'at']);

/** Reads one event; a bad one is a FeedbackItemError (FEEDBACK_INVALID). */
export function parseFeedbackItem(v: unknown, where: string): FeedbackInput | FeedbackItemError {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return new FeedbackItemError('FEEDBACK_INVALID', `${where} must be a JSON object`, null);
  const o = v as Record<string, unknown>;
  const id = Object.hasOwn(o, 'event_id') ? o.event_id : undefined;
  const eventId = isValidEventId(id) ? id : null;
  const bad = (msg: string) => new FeedbackItemError('FEEDBACK_INVALID', `${where}: ${msg}`, eventId);
  if (eventId === null) return bad(`event_id must be a string of 1 to ${MAX_EVENT_ID_LENGTH} characters without control characters`);
  for (const k of Object.keys(o)) if (!ITEM_KEYS.has(k)) return bad(`unknown field ${JSON.stringify(k.slice(0, 64))} (fields: event_id, reward, unit_id, at)`);
  const reward = o.reward;
  if (typeof reward !== 'number' || !Number.isFinite(reward)) return bad('reward must be a finite number');
  const out: FeedbackInput = { eventId, reward };
  if (o.unit_id !== undefined && o.unit_id !== null) {
    if (!isValidUnitId(o.unit_id)) return bad(`unit_id must be a string of 1 to ${MAX_EVENT_ID_LENGTH} characters without control characters`);
    out.unitId = o.unit_id;
  }
  if (o.at !== undefined && o.at !== null) {
    if (typeof o.at !== 'number' || !Number.isSafeInteger(o.at) || o.at < 0) return bad('at must be a time in integer milliseconds since the epoch');
    out.at = o.at;
  }
  return out;
}

/**
 * Reads a feedback body (already parsed JSON): per-item results in order. Whole-body problems
 * are thrown: not an object (FEEDBACK_INVALID), `events` not a non-empty array
 * (FEEDBACK_INVALID), more than `maxBatch` events (FEEDBACK_BATCH_TOO_LARGE).
 */
export function parseFeedback(body: unknown, maxBatch: number): Array<FeedbackInput | SluiceError> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SluiceError('FEEDBACK_INVALID', 'the body must be a JSON object: {"event_id", "reward"} or {"events": [...]}');
  const o = body as Record<string, unknown>;
  if (!Object.hasOwn(o, 'events')) return [parseFeedbackItem(o, 'feedback')];
  const events = o.events;
  if (!Array.isArray(events) || events.length === 0) throw new SluiceError('FEEDBACK_INVALID', 'events must be a non-empty array');
  if (events.length > maxBatch) throw new SluiceError('FEEDBACK_BATCH_TOO_LARGE', `events holds ${events.length} events; at most ${maxBatch} per request`);
  if (Object.keys(o).length !== 1) throw new SluiceError('FEEDBACK_INVALID', 'a batch body holds only "events"');
  return events.map((e, i) => parseFeedbackItem(e, `events[${i}]`));
}

/**
 * Submits the valid events of a parsed body and puts the outcomes back in the body's order
 * (refused items keep their parse errors): what every transport answers, one outcome per event.
 */
export async function submitParsed(parsed: Array<FeedbackInput | SluiceError>, submit: (items: FeedbackInput[]) => Promise<FeedbackOutcome[]>): Promise<FeedbackOutcome[]> {
  const valid = parsed.filter((p): p is FeedbackInput => !(p instanceof SluiceError));
  const stored = valid.length > 0 ? await submit(valid) : [];
  let k = 0;
  return parsed.map((p) => (p instanceof SluiceError ? errorOutcome(p instanceof FeedbackItemError ? p.eventId : null, p) : stored[k++]!));
}

export { FeedbackIntake, type FeedbackIntakeOptions, type FeedbackStats } from './feedback-intake.js';
