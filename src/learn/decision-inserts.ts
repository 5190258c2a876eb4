/**
 * How the decision log's batches are stored (decision-log.ts decides when): thread chunks as
 * rows of `decision_chunks`, single decisions as rows of `decisions`.
 */
import { writeOnly, type Db } from '../registry/db.js';
import { bytesArray } from './bytea-array.js';
import { contextsArray, latin1, type DecisionChunk } from './decision-chunk.js';
import { threadPool } from './shared-pool.js';

/**
 * The batch's thread chunks as one row each in `decision_chunks` (migration 012 says why),
 * and its single decisions (`offer`: any client's id) as rows of `decisions`. Each INSERT is
 * idempotent (ON CONFLICT DO NOTHING on the chunk's key, on the event id), so a batch retried
 * after a lost commit stores nothing twice, and the two need no transaction.
 */
export async function insertDecisions(db: Db, batch: DecisionChunk[]): Promise<void> {
  const singles = batch.filter((c) => c.single !== undefined);
  const chunks = singles.length === 0 ? batch : batch.filter((c) => c.single === undefined);
  if (chunks.length > 0) await insertChunks(db, chunks);
  if (singles.length > 0) await insertRows(db, singles);
}

/**
 * One INSERT for the chunks: their keys, spans and variants as one JSON text parameter, their rows'
 * bytes (ASCII), contexts and directories each as one binary bytea[] parameter, zipped
 * (ROWS FROM). Binary because the embedded database's driver sends a text or a bytea
 * parameter several times slower per byte than a binary array (a 100 KB bytea: 20-30 ms
 * against 2.8 ms as a one-element bytea[], 2026-12-03), and the rows are most of the bytes.
 * Through the database's `write` where it has one (writeOnly): no rows come back, and the
 * embedded database's thread reads the parameters where they are (shared buffers of this
 * thread's pool, shared-pool.ts says why; back to the pool once the write has returned).
 */
async function insertChunks(db: Db, chunks: DecisionChunk[]): Promise<void> {
  const meta = chunks.map((c) => `{"k":${JSON.stringify(c.key)},"lo":${c.minMs},"hi":${c.maxMs},"n":${c.n},"t":${c.tag ?? null},"va":${JSON.stringify(c.variants)}}`);
  const rows = bytesArray(chunks.map((c) => c.rows), threadPool);
  const contexts = bytesArray(chunks.map((c) => c.contexts), threadPool);
  const dir = bytesArray(chunks.map((c) => c.dir), threadPool);
  try {
    await writeOnly(db,
      `INSERT INTO decision_chunks (key, span, n, tag, variants, rows, contexts, dir)
       SELECT k, int8range(lo, hi, '[]'), n, t, va, r, c, di
         FROM ROWS FROM (jsonb_to_recordset($1::text::jsonb) AS (k text, lo int8, hi int8, n integer, t integer, va jsonb),
                         unnest($2::bytea[]), unnest($3::bytea[]), unnest($4::bytea[])) AS x(k, lo, hi, n, t, va, r, c, di)
       ON CONFLICT (key) DO NOTHING`,
      ['[' + meta.join(',') + ']', rows, contexts, dir],
    );
  } finally {
    for (const b of [rows, contexts, dir]) threadPool.give(b.buffer);
  }
}

/**
 * Single decisions: their rows as one JSON text parameter (jsonb_to_recordset), the same on
 * both drivers and cheaper to send and plan than 9 parameters per row (bench feedback on
 * PostgreSQL: 25.6k -> 56.6k decisions/s), zipped (ROWS FROM) with their contexts as one
 * binary bytea[] parameter (both drivers send a Buffer as binary), which the database copies
 * instead of parsing.
 */
async function insertRows(db: Db, batch: DecisionChunk[]): Promise<void> {
  const json = '[' + batch.map((c) => latin1(c.rows)).join(',') + ']';
  await db.query(
    `INSERT INTO decisions (event_id, at, model, variant, version, unit_id, propensity, route_gen, context, action)
     SELECT e, to_timestamp(a / 1000), m, v, ver, u, p, g, c, k
       FROM ROWS FROM (jsonb_to_recordset($1::text::jsonb) AS (e text, a float8, m text, v text, ver text, u text, p float8, g bigint, k integer),
                       unnest($2::bytea[])) AS x(e, a, m, v, ver, u, p, g, k, c)
     ON CONFLICT (event_id) DO NOTHING`,
    [json, contextsArray(batch)],
  );
}
