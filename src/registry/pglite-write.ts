/**
 * A statement whose rows nobody reads, sent to PGlite as one extended-protocol message of its
 * own making (Parse, Bind, Execute, Sync) instead of through PGlite's `query`.
 *
 * Why: the decision log writes its chunks as a few large binary parameters (hundreds of KB a
 * batch with features). PGlite's `query` runs Parse and a Describe first, then serialises each
 * parameter by copying it (`buffer.slice`) into a writer that grows by half again each time it
 * is full, copies the result out once more, and parses the reply into rows: four or five copies
 * of every byte, each a new ArrayBuffer. Those allocations drove the embedded database's thread
 * to a full garbage collection every ~5,000 decisions with 100 features (`node --trace-gc`: 63
 * in 300,000 decisions offered straight to the log, against 25 this way), and each copy cost
 * CPU: `npm run bench -- feedback` prints the rates and CPU per decision (README, *Feedback*:
 * "Chunks through `Db.write`").
 *
 * The message is built in one buffer, the thread's reused scratch (pgliteWrite). Parameters: a
 * Uint8Array is sent as it is in binary format (as both drivers send a Buffer; the caller encodes it as the
 * parameter's type expects, e.g. bytesArray for `bytea[]`), null as NULL, and a string,
 * number, bigint or boolean as its text. Anything else is refused: PGlite's `query` would
 * serialise it by its type, which this path does not know. Parameter types come from the SQL
 * (casts such as `$1::text`), as with an unnamed statement of zero declared types.
 */
import type { PGlite } from '@electric-sql/pglite';

const encoder = new TextEncoder();

/** A buffer messages are written into, replaced by one twice as large (or more) when one does not fit. */
export interface Scratch {
  buf: Uint8Array;
}

/**
 * Parse + Bind + Execute + Sync for `sql` with `params`, in one buffer: at the start of
 * `scratch.buf` when given (a view of it, valid until the scratch is written again; the buffer
 * grown first if the message does not fit), else a new one of its exact size.
 */
export function writeMessage(sql: string, params: readonly unknown[], scratch?: Scratch): Uint8Array {
  if (params.length > 0xffff) throw new RangeError(`too many parameters (${params.length})`);
  const text = encoder.encode(sql);
  const values: Array<Uint8Array | null> = params.map((p, i) => {
    if (p === null || p === undefined) return null;
    if (p instanceof Uint8Array) return p;
    if (typeof p === 'string') return encoder.encode(p);
    if (typeof p === 'number' || typeof p === 'bigint' || typeof p === 'boolean') return encoder.encode(String(p));
    throw new TypeError(`parameter $${i + 1}: a ${typeof p} cannot be written this way (strings, numbers, booleans, byte arrays, null)`);
  });
  // Lengths below count themselves (4 bytes) and not the type byte before them.
  const parseLen = 4 + 1 + text.length + 1 + 2;
  let bindLen = 4 + 1 + 1 + 2 + 2 * values.length + 2 + 2;
  for (const v of values) bindLen += 4 + (v?.length ?? 0);
  const executeLen = 4 + 1 + 4;
  const syncLen = 4;
  const size = 4 + parseLen + bindLen + executeLen + syncLen;
  if (scratch !== undefined && scratch.buf.byteLength < size) {
    let grown = scratch.buf.byteLength * 2;
    while (grown < size) grown *= 2;
    scratch.buf = new Uint8Array(grown);
  }
  const out = scratch !== undefined ? scratch.buf.subarray(0, size) : new Uint8Array(size);
  const dv = new DataView(out.buffer, out.byteOffset, size);
  let o = 0;
  // Parse: unnamed statement, the SQL, no declared parameter types.
  out[o++] = 0x50;
  dv.setInt32(o, parseLen);
  o += 4;
  out[o++] = 0; // statement name ""
  out.set(text, o);
  o += text.length;
  out[o++] = 0;
  dv.setInt16(o, 0);
  o += 2;
  // Bind: unnamed portal and statement, one format code per parameter, the values, text results.
  out[o++] = 0x42;
  dv.setInt32(o, bindLen);
  o += 4;
  out[o++] = 0; // portal ""
  out[o++] = 0; // statement ""
  dv.setInt16(o, values.length);
  o += 2;
  for (const p of params) {
    dv.setInt16(o, p instanceof Uint8Array ? 1 : 0);
    o += 2;
  }
  dv.setInt16(o, values.length);
  o += 2;
  for (const v of values) {
    dv.setInt32(o, v === null ? -1 : v.length);
    o += 4;
    if (v !== null) {
      out.set(v, o);
      o += v.length;
    }
  }
  dv.setInt16(o, 0); // result formats: all text (there are none to read)
  o += 2;
  // Execute: unnamed portal, no row limit.
  out[o++] = 0x45;
  dv.setInt32(o, executeLen);
  o += 4;
  out[o++] = 0;
  dv.setInt32(o, 0);
  o += 4;
  // Sync: ends the implicit transaction (commits it, or rolls it back after an error).
  out[o++] = 0x53;
  dv.setInt32(o, syncLen);
  return out;
}

/** A server error as PGlite's `query` reports one: message, SQLSTATE (`code`), severity, detail, constraint. */
export interface ServerError extends Error {
  code?: string;
  severity?: string;
  detail?: string;
  constraint?: string;
}

/** The first ErrorResponse in a reply (a sequence of backend messages), or undefined. */
export function replyError(reply: Uint8Array): ServerError | undefined {
  const dv = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  for (let o = 0; o + 5 <= reply.length; ) {
    const type = reply[o]!;
    const len = dv.getInt32(o + 1);
    if (type === 0x45) return errorFields(reply.subarray(o + 5, o + 1 + len));
    o += 1 + len;
  }
  return undefined;
}

/** ErrorResponse fields: a type byte, a NUL-terminated string, ..., a final NUL. */
function errorFields(body: Uint8Array): ServerError {
  const f = new Map<string, string>();
  for (let i = 0; i < body.length && body[i] !== 0; ) {
    const key = String.fromCharCode(body[i]!);
    let end = i + 1;
    while (end < body.length && body[end] !== 0) end++;
    f.set(key, Buffer.from(body.buffer, body.byteOffset + i + 1, end - i - 1).toString('utf8'));
    i = end + 1;
  }
  const e = new Error(f.get('M') ?? 'database error') as ServerError;
  e.name = 'DatabaseError';
  const fields: Array<[string, 'code' | 'severity' | 'detail' | 'constraint']> = [['C', 'code'], ['S', 'severity'], ['D', 'detail'], ['n', 'constraint']];
  for (const [k, name] of fields) {
    const v = f.get(k);
    if (v !== undefined) e[name] = v;
  }
  return e;
}

/**
 * Runs the statement as `query` would, in PGlite's turn (after any open transaction, before the
 * next statement), and throws the server's error if it reported one.
 */
export async function pgliteWrite(pg: PGlite, sql: string, params: readonly unknown[]): Promise<void> {
  // As `query` does first: a closed (or never ready) database refuses instead of running.
  await pg._checkReady();
  // The message is built in its turn, into this thread's one scratch buffer: PGlite reads it
  // during execProtocolRaw's synchronous part alone, and turns run one at a time.
  const reply = await pg._runExclusiveTransaction(() => pg.runExclusive(() => {
    const message = writeMessage(sql, params, scratch);
    return pg.execProtocolRaw(message);
  }));
  const e = replyError(reply);
  if (e) throw e;
}

/**
 * The scratch buffer messages are written into: one per thread, grown (doubling, from 64 KB) to
 * the largest message so far. A new buffer per write was as many bytes of new memory as the
 * decision log writes (megabytes a second), which V8 charges to this thread until a full
 * collection (shared-pool.ts says what that cost).
 */
const scratch: Scratch = { buf: new Uint8Array(64 * 1024) };
