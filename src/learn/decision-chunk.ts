/**
 * Decisions as an I/O thread hands them to the decision log: a chunk of rows already encoded as
 * the JSON the log's INSERT reads (decision-log.ts), with the few facts the log needs without
 * reading them: how many, their time range, and counts per (model, variant, version).
 *
 * Why not an array of Decision objects: at tens of thousands of routed requests a second, each
 * decision as an object was built on the I/O thread, structured-cloned field by field into the
 * main thread, checked, indexed in a Map and turned into JSON there: ~2-3 µs of I/O-thread CPU
 * per request (`npm run bench -- routing`). A chunk is one string built by concatenation on the
 * request path and copied once; the log only joins chunks into the INSERT's parameter. A
 * decision is read back from its row only when feedback arrives before its batch is committed
 * (`findRow`, narrowed by time: event ids are UUIDv7s that carry it).
 */
import { contextBase64, contextOf, type Decision } from './decision.js';

export interface DecisionChunk {
  /** JSON objects, comma-separated without brackets, one per decision (keys: see encodeRow). */
  rows: string;
  /** How many decisions. */
  n: number;
  /** The earliest and latest decision time (ms since the epoch). */
  minMs: number;
  maxMs: number;
  /** Decisions per model, variant and version: [model, variant, version, count]. */
  counts: Array<[string, string, string, number]>;
  /** Set on a chunk of one decision offered on its own (DecisionLog.offer): its event id. */
  single?: string;
}

/**
 * The part of a row that is the same for every decision of one route variant: model, variant,
 * version and route generation, JSON-encoded once (PlaneRoute keeps one per variant).
 */
export function rowMiddle(model: string, variant: string, version: string, routeGen: number): string {
  return `,"m":${JSON.stringify(model)},"v":${JSON.stringify(variant)},"ver":${JSON.stringify(version)},"g":${routeGen}`;
}

/** Builds one thread's chunk, decision by decision, allocating little more than the string. */
export class DecisionChunkBuilder {
  private rows = '';
  private count = 0;
  private minMs = Infinity;
  private maxMs = -Infinity;
  /** Counts keyed by the variant's row middle (the same string object per variant). */
  private byVariant = new Map<string, [string, string, string, number]>();

  get n(): number {
    return this.count;
  }

  /**
   * Appends a decision. `middle` is rowMiddle(model, variant, version, routeGen); `eventId` a
   * UUIDv7 (hex and dashes: nothing to escape); `at` its time.
   */
  add(eventId: string, at: number, middle: string, model: string, variant: string, version: string, unitId: string | undefined, propensity: number, features: Float32Array | undefined, action?: number): void {
    const row = rowText('"' + eventId + '"', at, middle, propensity, unitId, features, action);
    this.rows = this.count === 0 ? row : this.rows + ',' + row;
    this.count++;
    if (at < this.minMs) this.minMs = at;
    if (at > this.maxMs) this.maxMs = at;
    const c = this.byVariant.get(middle);
    if (c) c[3]++;
    else this.byVariant.set(middle, [model, variant, version, 1]);
  }

  /** The chunk so far (undefined when empty), and a fresh start. */
  take(): DecisionChunk | undefined {
    if (this.count === 0) return undefined;
    const chunk: DecisionChunk = { rows: this.rows, n: this.count, minMs: this.minMs, maxMs: this.maxMs, counts: [...this.byVariant.values()] };
    this.rows = '';
    this.count = 0;
    this.minMs = Infinity;
    this.maxMs = -Infinity;
    this.byVariant = new Map();
    return chunk;
  }
}

/**
 * A row: `quotedEventId` is the id as a JSON string (a UUIDv7 needs only the quotes), the
 * features literal needs none (digits, signs, NaN, Infinity, commas and braces).
 */
function rowText(quotedEventId: string, at: number, middle: string, propensity: number, unitId: string | undefined, features: Float32Array | number[] | undefined, action: number | undefined): string {
  let row = '{"e":' + quotedEventId + ',"a":' + at + middle + ',"p":' + propensity;
  if (action !== undefined) row += ',"k":' + action;
  if (unitId !== undefined) row += ',"u":' + JSON.stringify(unitId);
  if (features !== undefined) row += ',"c":"' + contextBase64(features) + '"';
  return row + '}';
}

/** One decision as a row (the same form the builder writes; its id may be any client's text). */
export function encodeRow(d: Decision): string {
  return rowText(JSON.stringify(d.eventId), d.at, rowMiddle(d.model, d.variant, d.version, d.routeGen), d.propensity, d.unitId, d.features, d.action);
}

/** A chunk of one decision. */
export function chunkOf(d: Decision): DecisionChunk {
  return { rows: encodeRow(d), n: 1, minMs: d.at, maxMs: d.at, counts: [[d.model, d.variant, d.version, 1]], single: d.eventId };
}

interface RowJson {
  e: string;
  a: number;
  m: string;
  v: string;
  ver: string;
  g: number;
  p: number;
  u?: string;
  c?: string;
  k?: number;
}

function fromRow(r: RowJson): Decision {
  const d: Decision = { eventId: r.e, at: r.a, model: r.m, variant: r.v, version: r.ver, propensity: r.p, routeGen: r.g };
  if (r.u !== undefined) d.unitId = r.u;
  if (r.k !== undefined) d.action = r.k;
  if (r.c !== undefined) d.features = contextOf(Buffer.from(r.c, 'base64'));
  return d;
}

/** Every decision of a chunk (for listeners that want objects; the log itself never needs them). */
export function decisionsOf(chunk: DecisionChunk): Decision[] {
  return (JSON.parse('[' + chunk.rows + ']') as RowJson[]).map(fromRow);
}

/**
 * The decision with this UUIDv7 event id in the chunk, if there (ids are hex and dashes, so the
 * text search needs no escaping, and `},{"e":"` cannot occur inside a row: quotes in its
 * strings are escaped).
 */
export function findRow(chunk: DecisionChunk, eventId: string): Decision | undefined {
  const start = chunk.rows.indexOf('{"e":"' + eventId + '"');
  if (start < 0) return undefined;
  const next = chunk.rows.indexOf('},{"e":', start);
  return fromRow(JSON.parse(chunk.rows.slice(start, next < 0 ? undefined : next + 1)) as RowJson);
}
