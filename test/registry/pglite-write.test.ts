/**
 * Db.write on the embedded database (src/registry/pglite-write.ts): one statement sent as its
 * own extended-protocol message. It must store exactly what `query` stores (text and binary
 * parameters, NULL), report the server's errors with their SQLSTATE, refuse parameters it
 * cannot encode, and wait its turn behind an open transaction instead of running inside it;
 * in-process and through the database's thread (the way the server runs it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlState, type Db } from '../../src/registry/db.js';
import { PgliteDb } from '../../src/registry/pglite-db.js';
import { PgliteThreadDb } from '../../src/registry/pglite-thread.js';
import { replyError, writeMessage } from '../../src/registry/pglite-write.js';
import { bytesArray } from '../../src/learn/bytea-array.js';

describe('writeMessage / replyError', () => {
  it('frames Parse, Bind, Execute and Sync with the lengths the protocol gives', () => {
    const m = writeMessage('SELECT $1::text, $2::bytea', ['é', new Uint8Array([9, 8])]);
    const dv = new DataView(m.buffer);
    const types: string[] = [];
    for (let o = 0; o < m.length; o += 1 + dv.getInt32(o + 1)) types.push(String.fromCharCode(m[o]!));
    expect(types).toEqual(['P', 'B', 'E', 'S']);
    // Bind's format codes: text for the string, binary for the bytes.
    const bind = 1 + dv.getInt32(1);
    const formatsAt = bind + 5 + 2; // type + length, empty portal and statement names
    expect(dv.getInt16(formatsAt)).toBe(2);
    expect([dv.getInt16(formatsAt + 2), dv.getInt16(formatsAt + 4)]).toEqual([0, 1]);
    // The string's value is its UTF-8 bytes.
    expect(dv.getInt32(formatsAt + 8)).toBe(2);
  });

  it('refuses a parameter it cannot encode instead of sending its toString()', () => {
    expect(() => writeMessage('SELECT $1', [{ a: 1 }])).toThrow(/parameter \$1/);
    expect(() => writeMessage('SELECT $1', [[1, 2]])).toThrow(TypeError);
  });

  it('reads the fields of an ErrorResponse, and nothing from a reply without one', () => {
    const fields = 'SERROR\0C23505\0Mduplicate key\0Dkey (k)=(x)\0nt_pkey\0\0';
    const body = Buffer.from(fields, 'latin1');
    const reply = Buffer.concat([Buffer.from([0x31, 0, 0, 0, 4]), Buffer.from([0x45]), Buffer.alloc(4), body]);
    reply.writeInt32BE(4 + body.length, 6);
    const e = replyError(reply)!;
    expect({ message: e.message, code: e.code, severity: e.severity, detail: e.detail, constraint: e.constraint })
      .toEqual({ message: 'duplicate key', code: '23505', severity: 'ERROR', detail: 'key (k)=(x)', constraint: 't_pkey' });
    expect(replyError(Buffer.from([0x31, 0, 0, 0, 4, 0x5a, 0, 0, 0, 5, 0x49]))).toBeUndefined();
  });
});

for (const [name, open] of [
  ['in-process', () => PgliteDb.open(undefined)],
  ['in its thread', () => PgliteThreadDb.open(undefined)],
] as Array<[string, () => Promise<Db>]>) {
  describe(`Db.write on PGlite ${name}`, () => {
    let db: Db;
    beforeAll(async () => {
      db = await open();
      await db.exec('CREATE TABLE w (k text PRIMARY KEY, n int, note text, blobs bytea[])');
    });
    afterAll(async () => {
      await db.close();
    });

    it('stores what query stores: text, numbers, NULL and a binary bytea[]', async () => {
      const blobs = [new Uint8Array(100_000).fill(3), new Uint8Array([1, 2, 3])];
      await db.write!('INSERT INTO w (k, n, note, blobs) VALUES ($1::text, $2::int, $3::text, $4::bytea[])', ['a', 42, null, bytesArray(blobs)]);
      await db.query('INSERT INTO w (k, n, note, blobs) VALUES ($1::text, $2::int, $3::text, $4::bytea[])', ['b', 42, null, bytesArray(blobs)]);
      const rows = await db.query<{ k: string; n: number; note: string | null; sizes: number[]; firsts: number[] }>(
        'SELECT k, n, note, array(SELECT octet_length(x) FROM unnest(blobs) x) AS sizes, array(SELECT get_byte(x, 0) FROM unnest(blobs) x) AS firsts FROM w ORDER BY k');
      expect(rows).toEqual([
        { k: 'a', n: 42, note: null, sizes: [100_000, 3], firsts: [3, 1] },
        { k: 'b', n: 42, note: null, sizes: [100_000, 3], firsts: [3, 1] },
      ]);
    });

    it('reports the server\'s error with its SQLSTATE, and the statement after it runs', async () => {
      const e = await db.write!('INSERT INTO w (k) VALUES ($1::text)', ['a']).catch((x: unknown) => x);
      expect(sqlState(e)).toBe('23505');
      await db.write!('INSERT INTO w (k) VALUES ($1::text)', ['c']);
      expect(await db.query('SELECT k FROM w WHERE k = $1', ['c'])).toEqual([{ k: 'c' }]);
    });

    it('waits for an open transaction instead of running inside it', async () => {
      let written: Promise<void> | undefined;
      await db.transaction(async (tx) => {
        await tx.query('INSERT INTO w (k) VALUES ($1)', ['in-tx']);
        written = db.write!('INSERT INTO w (k) VALUES ($1::text)', ['outside']);
        await new Promise((r) => setTimeout(r, 50));
        throw new Error('roll back');
      }).catch(() => undefined);
      await written;
      // Inside the transaction, the write would have been rolled back with it.
      expect(await db.query('SELECT k FROM w WHERE k IN ($1, $2) ORDER BY k', ['in-tx', 'outside'])).toEqual([{ k: 'outside' }]);
    });

    it('refuses once the database is closed, as query does', async () => {
      const other = await open();
      await other.close();
      const [w, q] = await Promise.all([
        other.write!('SELECT 1', []).then(() => 'ran', (e: unknown) => e),
        other.query('SELECT 1').then(() => 'ran', (e: unknown) => e),
      ]);
      expect(w).toBeInstanceOf(Error);
      expect(q).toBeInstanceOf(Error);
    });
  });
}
