/**
 * Parameter buffers a caller gives away with its query: the embedded database's thread
 * (pglite-thread.ts) receives their memory (a transfer) instead of a structured-clone copy, which
 * would be new memory outside the JavaScript heap, charged to the thread until a full collection.
 * The decision log, which writes megabytes a second, goes further: its parameters are shared
 * buffers it reuses (src/learn/shared-pool.ts), neither copied nor moved. A SharedArrayBuffer
 * is never marked. PostgreSQL's driver ignores the mark. A given-away buffer must not be used
 * after the call (its memory moves; a view of it reads as empty).
 */
const given = new WeakSet<ArrayBufferLike>();

/** Marks `b` as given away with the next query it is a parameter of; returns it. A view of part of a buffer (a pooled small Buffer) is not marked: only whole buffers move. */
export function givenAway<T extends Uint8Array>(b: T): T {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) given.add(b.buffer);
  return b;
}

/** The memory of `params` given away, to transfer with them (each at most once). */
export function transfersOf(params: readonly unknown[]): ArrayBuffer[] {
  let out: ArrayBuffer[] | undefined;
  for (const p of params) {
    if (p instanceof Uint8Array && given.has(p.buffer)) {
      given.delete(p.buffer);
      (out ??= []).push(p.buffer as ArrayBuffer);
    }
  }
  return out ?? NONE;
}

const NONE: ArrayBuffer[] = [];
