/**
 * Decisions as an I/O thread hands them to the decision log, encoded as the database stores
 * them (one `decision_chunks` row per chunk, migrations 012 and 014): the rows' JSON (ASCII, so
 * string offsets are byte offsets), the contexts (input features: per row a 32-bit big-endian
 * length, then the float32 bytes, which the database copies instead of parsing text), a
 * directory of 20 bytes per row (the UUIDv7's 16 bytes and the row's offset) by which a lookup
 * finds one row without reading the others, and the chunk's variants (model, variant, version,
 * route generation). With them, the few facts the log needs without reading them: how many,
 * their time span, and counts per (model, variant, version).
 *
 * A row of the thread's own making (its event id made by the builder, its time the one the id
 * carries: every row on the request path) holds only what differs per decision: the index of
 * its variant in `variants`, propensity, unit id, action and where its context is. Its event id
 * is in the directory and its time in the id. Other rows are written whole (rowText). Full rows
 * for every decision were ~145 bytes where a short one is ~35, and the embedded database's cost
 * per decision written grows with its bytes (~3.3 µs against ~1.6 µs of CPU per decision in
 * chunks of 256, 2026-12-04; migration 014 has the measurement).
 *
 * Why not an array of Decision objects: at tens of thousands of routed requests a second, each
 * decision as an object was built on the I/O thread, structured-cloned field by field into the
 * main thread, checked, indexed in a Map and turned into JSON there: ~2-3 µs of I/O-thread CPU
 * per request (`npm run bench -- routing`). A chunk's rows are written into one growing buffer
 * on the request path and handed to the control plane in a shared buffer of the thread's pool
 * (shared-pool.ts), without a copy. A decision is read back from its chunk only when feedback
 * arrives for it while the log still holds the chunk (`findRow`, narrowed by time: event ids
 * are UUIDv7s that carry it).
 */
import { contextOf, type Decision } from './decision.js';
import { byteaArray } from './bytea-array.js';
import { asciiBytes, ContextWriter, DirWriter, jsonAscii, RowsWriter } from './chunk-writers.js';
import { flushReleases, releaseBuffers, threadPool, THIS_THREAD } from './shared-pool.js';
import { chunkPlace, lastEventIdBytes, lastEventIdMs, newEventId, uuidHex, uuidMs, uuidText } from './event-id.js';

/** Rows a tagged chunk can hold: the index is 16 bits (after it, ids are plain: the chunk is untagged). */
const MAX_TAGGED_ROWS = 65_536;

export interface DecisionChunk {
  /**
   * JSON objects, comma-separated without brackets, one per decision (keys: see rowText), as
   * ASCII bytes. A thread's chunk has them at the start of a shared buffer of its pool
   * (`origin`): handed to the control plane by sharing, not copied (a 33 KB string cost
   * ~110-170 µs to post, 2026-12-03), and reused once the log is done with the chunk.
   */
  rows: Uint8Array;
  /**
   * One element per row, in order, as PostgreSQL's binary array format writes them: a 32-bit
   * big-endian length and the features' float32 bytes (little-endian), or length -1 for none.
   * In a buffer of its own, or of `origin`'s pool as `rows`.
   */
  contexts: Uint8Array;
  /**
   * Set on a thread's chunk: the id of the thread whose pool (shared-pool.ts) holds its rows,
   * contexts and directory, to which the log gives them back (releaseChunk) once it has
   * written the chunk and keeps it no longer. Unset: buffers of their own, left to the collector.
   */
  origin?: number;
  /** How many decisions. */
  n: number;
  /** The earliest and latest decision time (ms since the epoch), or time a row's UUIDv7 carries. */
  minMs: number;
  maxMs: number;
  /**
   * The variants the chunk's decisions were made under: [model, variant, version, route
   * generation]. Short rows name theirs by index ("x"); a single decision's chunk (chunkOf) has
   * its one variant here too, though its row is whole.
   */
  variants: Array<[string, string, string, number]>;
  /** How many of the chunk's decisions each entry of `variants` made (same order). */
  variantCounts: number[];
  /**
   * The rows' directory: per row its event id's 16 bytes (a UUIDv7's hex) and the byte offset of
   * its row in `rows` (32-bit big-endian; the rows are ASCII), so that the database finds one
   * row without reading the others (migration 012).
   */
  dir: Uint8Array;
  /** The first row's event id: names the chunk where it is stored (a retried write stores it once). */
  key: string;
  /** Set on a chunk of one decision offered on its own (DecisionLog.offer): its event id. */
  single?: string;
  /**
   * Set when every row's id was made by the builder's nextId(): the tag those ids carry (with
   * their row index), by which feedback finds the chunk with one index probe (migration 013).
   */
  tag?: number;
}

/**
 * What every decision of one route variant shares: model, variant, version and route
 * generation, and `middle`, the part of a whole row they make, JSON-encoded once. Made once per
 * variant (PlaneRoute keeps one per variant); the builder knows a variant by its middle.
 */
export interface ChunkVariant {
  readonly model: string;
  readonly variant: string;
  readonly version: string;
  readonly routeGen: number;
  readonly middle: string;
}

export function chunkVariant(model: string, variant: string, version: string, routeGen: number): ChunkVariant {
  return { model, variant, version, routeGen, middle: rowMiddle(model, variant, version, routeGen) };
}

function rowMiddle(model: string, variant: string, version: string, routeGen: number): string {
  return `,"m":${jsonAscii(model)},"v":${jsonAscii(variant)},"ver":${jsonAscii(version)},"g":${routeGen}`;
}

/** Builds one thread's chunk, decision by decision, allocating little more than the string. */
export class DecisionChunkBuilder {
  private rows = new RowsWriter();
  private count = 0;
  private minMs = Infinity;
  private maxMs = -Infinity;
  /** Per variant, keyed by its row middle (the same string object per variant): its index in `variants`. */
  private byVariant = new Map<string, number>();
  private variants: Array<[string, string, string, number]> = [];
  private variantCounts: number[] = [];
  private contexts = new ContextWriter();
  private dir = new DirWriter();
  private key = '';
  /** This chunk's tag (drawn with its first id; -1 before), and whether every row's id carries it. */
  private tag = -1;
  private tagged = true;
  /** The id nextId() made last, not yet added. */
  private issued: string | undefined;

  get n(): number {
    return this.count;
  }

  /**
   * The event id for the next row to add: a UUIDv7 carrying this chunk's tag and the row's index
   * (newEventId), so that the decision is found without searching. Add its row before asking for
   * another; a row added with an id of any other making leaves the chunk untagged (found by time).
   */
  nextId(): string {
    if (this.count >= MAX_TAGGED_ROWS) return newEventId();
    if (this.tag < 0) this.tag = Math.floor(Math.random() * 0x1000000);
    return (this.issued = newEventId(this.tag, this.count));
  }

  /**
   * Appends a decision made under `cv` (chunkVariant). `eventId` is a UUIDv7 (hex and dashes:
   * nothing to escape); `at` its time. The features' bytes are copied before it returns: they
   * may be a view into a request's buffer that is reused afterwards.
   */
  add(eventId: string, at: number, cv: ChunkVariant, unitId: string | undefined, propensity: number, features: Float32Array | undefined, action?: number): void {
    const middle = cv.middle;
    // The id nextId() made last still has its bytes at hand (no hex to parse for the directory).
    const bytes = eventId === this.issued ? lastEventIdBytes() : undefined;
    if (bytes === undefined) this.tagged = false;
    this.issued = undefined;
    let v = this.byVariant.get(middle);
    if (v === undefined) {
      v = this.variants.length;
      this.byVariant.set(middle, v);
      this.variants.push([cv.model, cv.variant, cv.version, cv.routeGen]);
      this.variantCounts.push(0);
    }
    this.variantCounts[v]!++;
    const where = this.contexts.add(features);
    if (this.count === 0) this.key = eventId;
    // An id of this thread's making at the time it carries: a short row, its id in the
    // directory (the bytes at hand), written straight into the buffer. Otherwise the whole row.
    const rowAt = bytes !== undefined && at === lastEventIdMs()
      ? this.rows.addOwn(v, propensity, unitId, action, where, features)
      : this.rows.add(rowText('"' + eventId + '"', at, middle, propensity, unitId, action, where, features));
    this.dir.add(eventId, rowAt, bytes);
    this.count++;
    // The span covers the decision's time and the time its id carries (the same when `at` is
    // lastEventIdMs(), as on the request path): lookups search chunks by the id's time.
    const idMs = bytes !== undefined ? lastEventIdMs() : uuidMs(eventId);
    if (at < this.minMs) this.minMs = at;
    if (at > this.maxMs) this.maxMs = at;
    if (idMs < this.minMs) this.minMs = idMs;
    if (idMs > this.maxMs) this.maxMs = idMs;
  }

  /** The chunk so far (undefined when empty), and a fresh start. */
  take(): DecisionChunk | undefined {
    if (this.count === 0) return undefined;
    const chunk: DecisionChunk = {
      rows: this.rows.take(threadPool), contexts: this.contexts.take(threadPool), dir: this.dir.take(threadPool), origin: THIS_THREAD,
      n: this.count, minMs: this.minMs, maxMs: this.maxMs, variants: this.variants, variantCounts: this.variantCounts, key: this.key,
    };
    if (this.tagged && this.tag >= 0) chunk.tag = this.tag;
    this.tag = -1;
    this.tagged = true;
    this.issued = undefined;
    this.count = 0;
    this.minMs = Infinity;
    this.maxMs = -Infinity;
    this.byVariant = new Map();
    this.variants = [];
    this.variantCounts = [];
    return chunk;
  }
}

/**
 * Gives a thread chunk's buffers back to its thread's pool (shared-pool.ts; for another thread's,
 * at the next flushReleases()). The chunk must not be read afterwards: its bytes will be reused.
 */
export function releaseChunk(chunk: DecisionChunk): void {
  if (chunk.origin === undefined) return;
  releaseBuffers(chunk.origin, [chunk.rows, chunk.contexts, chunk.dir]);
  chunk.origin = undefined;
}

/** Chunks their holder is done with: each released, and other threads' buffers sent back now. */
export function releaseChunks(chunks: readonly DecisionChunk[]): void {
  for (const c of chunks) releaseChunk(c);
  flushReleases();
}

/** Bytes [start, end) of `b` as text (the rows are ASCII: one character per byte). */
export function latin1(b: Uint8Array, start = 0, end = b.byteLength): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', start, end);
}

/** The contexts of `chunks`, in order, as one PostgreSQL binary `bytea[]` value. */
export function contextsArray(chunks: readonly DecisionChunk[]): Buffer {
  let n = 0;
  for (const c of chunks) n += c.n;
  return byteaArray(n, chunks.map((c) => c.contexts));
}

/** Features (or none), one per row, as one PostgreSQL binary `bytea[]` value (NULL for none). */
export function featuresArray(rows: ReadonlyArray<Float32Array | number[] | undefined>): Buffer {
  const w = new ContextWriter();
  for (const f of rows) w.add(f);
  return byteaArray(rows.length, [w.take()]);
}

/**
 * A whole row: `quotedEventId` is the id as a JSON string (a UUIDv7 needs only the quotes). With
 * a context, `o` and `l` say where its bytes are in the chunk's contexts (the database reads one
 * row's context with substring(); migration 012).
 */
function rowText(quotedEventId: string, at: number, middle: string, propensity: number, unitId: string | undefined, action: number | undefined, contextAt: number, features: ArrayLike<number> | undefined): string {
  let row = '{"e":' + quotedEventId + ',"a":' + at + middle + ',"p":' + propensity;
  if (action !== undefined) row += ',"k":' + action;
  if (unitId !== undefined) row += ',"u":' + jsonAscii(unitId);
  if (contextAt >= 0) row += ',"o":' + contextAt + ',"l":' + features!.length * 4;
  return row + '}';
}

/**
 * A short row (RowsWriter.addOwn writes the same bytes): `variant` is the index of the row's
 * variant in its chunk's `variants`; its event id and time are its directory entry's.
 */
export function ownRowText(variant: number, propensity: number, unitId: string | undefined, action: number | undefined, contextAt: number, features: ArrayLike<number> | undefined): string {
  let row = '{"x":' + variant + ',"p":' + propensity;
  if (action !== undefined) row += ',"k":' + action;
  if (unitId !== undefined) row += ',"u":' + jsonAscii(unitId);
  if (contextAt >= 0) row += ',"o":' + contextAt + ',"l":' + features!.length * 4;
  return row + '}';
}

/** A chunk of one decision (its id may be any client's text). */
export function chunkOf(d: Decision): DecisionChunk {
  const contexts = new ContextWriter();
  const where = contexts.add(d.features);
  const rows = asciiBytes(rowText(jsonAscii(d.eventId), d.at, rowMiddle(d.model, d.variant, d.version, d.routeGen), d.propensity, d.unitId, d.action, where, d.features));
  const dir = new DirWriter();
  dir.add(d.eventId, 0);
  return { rows, contexts: contexts.take(), dir: dir.take(), n: 1, minMs: d.at, maxMs: d.at, variants: [[d.model, d.variant, d.version, d.routeGen]], variantCounts: [1], key: d.eventId, single: d.eventId };
}

/** A row as stored: a whole one has e, a, m, v, ver and g; a short one x instead. */
interface RowJson {
  e?: string;
  a?: number;
  m?: string;
  v?: string;
  ver?: string;
  g?: number;
  x?: number;
  p: number;
  u?: string;
  k?: number;
  /** Where the row's context is in the chunk's contexts (absent: none). */
  o?: number;
  l?: number;
}

/** Row `index` of `chunk`, parsed as `r`. */
function fromRow(r: RowJson, chunk: DecisionChunk, index: number): Decision {
  let d: Decision;
  if (r.x === undefined) {
    d = { eventId: r.e!, at: r.a!, model: r.m!, variant: r.v!, version: r.ver!, propensity: r.p, routeGen: r.g! };
  } else {
    const [model, variant, version, routeGen] = chunk.variants[r.x]!;
    const eventId = uuidText(chunk.dir, index * 20);
    d = { eventId, at: uuidMs(eventId), model, variant, version, propensity: r.p, routeGen };
  }
  if (r.u !== undefined) d.unitId = r.u;
  if (r.k !== undefined) d.action = r.k;
  if (r.o !== undefined) d.features = contextOf(chunk.contexts.subarray(r.o, r.o + r.l!));
  return d;
}

/** Every decision of a chunk (for listeners that want objects; the log itself never needs them). */
export function decisionsOf(chunk: DecisionChunk): Decision[] {
  return (JSON.parse('[' + latin1(chunk.rows) + ']') as RowJson[]).map((r, i) => fromRow(r, chunk, i));
}

/**
 * The decision with this UUIDv7 event id in the chunk, if there: in a tagged chunk, the row its
 * id names (or none, when the id carries another tag); else found by a byte search of the
 * chunk's directory (20 bytes per row, where searching the rows' text cost microseconds per
 * chunk). Its row alone is parsed.
 */
export function findRow(chunk: DecisionChunk, eventId: string): Decision | undefined {
  const needle = idBytes(eventId);
  if (needle === undefined) return undefined;
  const dir = Buffer.from(chunk.dir.buffer, chunk.dir.byteOffset, chunk.dir.byteLength);
  let at: number;
  if (chunk.tag !== undefined) {
    const place = chunkPlace(eventId);
    if (place === undefined || place.tag !== chunk.tag || place.index >= chunk.n) return undefined;
    at = place.index * 20;
    if (dir.compare(needle, 0, 16, at, at + 16) !== 0) return undefined;
  } else {
    at = dir.indexOf(needle);
    // A match off the 20-byte grid (16 bytes across two entries) is not this id.
    while (at >= 0 && at % 20 !== 0) at = dir.indexOf(needle, at + 1);
    if (at < 0) return undefined;
  }
  const start = dir.readUInt32BE(at + 16);
  const end = at + 20 < dir.length ? dir.readUInt32BE(at + 36) - 1 : chunk.rows.byteLength;
  return fromRow(JSON.parse(latin1(chunk.rows, start, end)) as RowJson, chunk, at / 20);
}

/** A UUIDv7's 16 bytes, as the directory holds them (undefined for an id of another form). */
function idBytes(eventId: string): Buffer | undefined {
  const b = Buffer.from(uuidHex(eventId), 'hex');
  return b.length === 16 ? b : undefined;
}
