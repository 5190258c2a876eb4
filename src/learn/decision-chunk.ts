/**
 * Decisions as an I/O thread hands them to the decision log: a chunk of rows already encoded as
 * the INSERT's parameters read them (decision-log.ts): the JSON of every field but the context,
 * and the contexts (input features) as the elements of a PostgreSQL binary `bytea[]`, so that
 * the database copies their bytes instead of parsing text (base64 inside the JSON cost PGlite
 * ~7 of ~22 us per 100-feature row; `npm run bench -- feedback`, 100-feature decisions/s:
 * 1.28x on PGlite, 1.4x on PostgreSQL, 2026-12-03). With them, the
 * few facts the log needs without reading them: how many, their time range, and counts per
 * (model, variant, version).
 *
 * Why not an array of Decision objects: at tens of thousands of routed requests a second, each
 * decision as an object was built on the I/O thread, structured-cloned field by field into the
 * main thread, checked, indexed in a Map and turned into JSON there: ~2-3 µs of I/O-thread CPU
 * per request (`npm run bench -- routing`). A chunk is one string built by concatenation on the
 * request path and copied once; the log only joins chunks into the INSERT's parameter. A
 * decision is read back from its row only when feedback arrives before its batch is committed
 * (`findRow`, narrowed by time: event ids are UUIDv7s that carry it).
 */
import { contextOf, type Decision } from './decision.js';

export interface DecisionChunk {
  /** JSON objects, comma-separated without brackets, one per decision (keys: see encodeRow). */
  rows: string;
  /**
   * One element per row, in order, as PostgreSQL's binary array format writes them: a 32-bit
   * big-endian length and the features' float32 bytes (little-endian), or length -1 for none.
   * A buffer of its own (a view into a larger one would be copied whole between threads).
   */
  contexts: Uint8Array;
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
  private contexts = new ContextWriter();

  get n(): number {
    return this.count;
  }

  /**
   * Appends a decision. `middle` is rowMiddle(model, variant, version, routeGen); `eventId` a
   * UUIDv7 (hex and dashes: nothing to escape); `at` its time. The features' bytes are copied
   * before it returns: they may be a view into a request's buffer that is reused afterwards.
   */
  add(eventId: string, at: number, middle: string, model: string, variant: string, version: string, unitId: string | undefined, propensity: number, features: Float32Array | undefined, action?: number): void {
    const row = rowText('"' + eventId + '"', at, middle, propensity, unitId, action);
    this.rows = this.count === 0 ? row : this.rows + ',' + row;
    this.contexts.add(features);
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
    const chunk: DecisionChunk = { rows: this.rows, contexts: this.contexts.take(), n: this.count, minMs: this.minMs, maxMs: this.maxMs, counts: [...this.byVariant.values()] };
    this.rows = '';
    this.count = 0;
    this.minMs = Infinity;
    this.maxMs = -Infinity;
    this.byVariant = new Map();
    return chunk;
  }
}

/** Appends contexts as binary array elements to a buffer that grows by doubling. */
class ContextWriter {
  private buf = Buffer.allocUnsafe(1024);
  private end = 0;

  add(features: Float32Array | number[] | undefined): void {
    if (features === undefined) {
      this.room(4);
      this.end = this.buf.writeInt32BE(-1, this.end);
      return;
    }
    const f = features instanceof Float32Array ? features : Float32Array.from(features);
    this.room(4 + f.byteLength);
    this.end = this.buf.writeInt32BE(f.byteLength, this.end);
    this.buf.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), this.end);
    this.end += f.byteLength;
  }

  /** The elements so far, in a buffer of their own, and a fresh start. */
  take(): Uint8Array {
    const out = new Uint8Array(this.buf.subarray(0, this.end));
    this.end = 0;
    return out;
  }

  private room(n: number): void {
    if (this.end + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.end + n));
    this.buf.copy(bigger, 0, 0, this.end);
    this.buf = bigger;
  }
}

/** The contexts of `chunks`, in order, as one PostgreSQL binary `bytea[]` value. */
export function contextsArray(chunks: readonly DecisionChunk[]): Buffer {
  let n = 0;
  let bytes = 0;
  for (const c of chunks) {
    n += c.n;
    bytes += c.contexts.byteLength;
  }
  // Header: dimensions, has-nulls flag (array_recv finds NULLs from the lengths itself), element
  // type (bytea, oid 17), then the one dimension's length and lower bound.
  const out = Buffer.allocUnsafe(20 + bytes);
  let at = out.writeInt32BE(1, 0);
  at = out.writeInt32BE(1, at);
  at = out.writeInt32BE(17, at);
  at = out.writeInt32BE(n, at);
  at = out.writeInt32BE(1, at);
  for (const c of chunks) {
    out.set(c.contexts, at);
    at += c.contexts.byteLength;
  }
  return out;
}

/** The context of row `index` of a chunk (undefined when it has none), decoding no other row's. */
function contextAt(chunk: DecisionChunk, index: number): Float32Array | undefined {
  const view = Buffer.from(chunk.contexts.buffer, chunk.contexts.byteOffset, chunk.contexts.byteLength);
  let at = 0;
  for (let i = 0; i < index; i++) at += 4 + Math.max(view.readInt32BE(at), 0);
  const len = view.readInt32BE(at);
  return len < 0 ? undefined : contextOf(view.subarray(at + 4, at + 4 + len));
}

/** The context elements of a chunk, one per row (undefined where a row has none). */
function contextsOf(chunk: DecisionChunk): Array<Float32Array | undefined> {
  const out: Array<Float32Array | undefined> = [];
  const view = Buffer.from(chunk.contexts.buffer, chunk.contexts.byteOffset, chunk.contexts.byteLength);
  for (let at = 0; at < view.length;) {
    const len = view.readInt32BE(at);
    at += 4;
    if (len < 0) {
      out.push(undefined);
      continue;
    }
    out.push(contextOf(view.subarray(at, at + len)));
    at += len;
  }
  return out;
}

/**
 * A row: `quotedEventId` is the id as a JSON string (a UUIDv7 needs only the quotes).
 */
function rowText(quotedEventId: string, at: number, middle: string, propensity: number, unitId: string | undefined, action: number | undefined): string {
  let row = '{"e":' + quotedEventId + ',"a":' + at + middle + ',"p":' + propensity;
  if (action !== undefined) row += ',"k":' + action;
  if (unitId !== undefined) row += ',"u":' + JSON.stringify(unitId);
  return row + '}';
}

/** One decision as a row (the same form the builder writes; its id may be any client's text). */
export function encodeRow(d: Decision): string {
  return rowText(JSON.stringify(d.eventId), d.at, rowMiddle(d.model, d.variant, d.version, d.routeGen), d.propensity, d.unitId, d.action);
}

/** A chunk of one decision. */
export function chunkOf(d: Decision): DecisionChunk {
  const contexts = new ContextWriter();
  contexts.add(d.features);
  return { rows: encodeRow(d), contexts: contexts.take(), n: 1, minMs: d.at, maxMs: d.at, counts: [[d.model, d.variant, d.version, 1]], single: d.eventId };
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
  k?: number;
}

function fromRow(r: RowJson, features: Float32Array | undefined): Decision {
  const d: Decision = { eventId: r.e, at: r.a, model: r.m, variant: r.v, version: r.ver, propensity: r.p, routeGen: r.g };
  if (r.u !== undefined) d.unitId = r.u;
  if (r.k !== undefined) d.action = r.k;
  if (features !== undefined) d.features = features;
  return d;
}

/** Every decision of a chunk (for listeners that want objects; the log itself never needs them). */
export function decisionsOf(chunk: DecisionChunk): Decision[] {
  const contexts = contextsOf(chunk);
  return (JSON.parse('[' + chunk.rows + ']') as RowJson[]).map((r, i) => fromRow(r, contexts[i]));
}

/**
 * The decision with this UUIDv7 event id in the chunk, if there (ids are hex and dashes, so the
 * text search needs no escaping, and `},{"e":"` cannot occur inside a row: quotes in its
 * strings are escaped).
 */
export function findRow(chunk: DecisionChunk, eventId: string): Decision | undefined {
  const start = chunk.rows.indexOf('{"e":"' + eventId + '"');
  if (start < 0) return undefined;
  // Its index: the rows before it (their separators cannot occur inside a row, as above).
  let index = 0;
  for (let at = chunk.rows.indexOf('},{"e":'); at >= 0 && at < start; at = chunk.rows.indexOf('},{"e":', at + 1)) index++;
  const next = chunk.rows.indexOf('},{"e":', start);
  return fromRow(JSON.parse(chunk.rows.slice(start, next < 0 ? undefined : next + 1)) as RowJson, contextAt(chunk, index));
}
