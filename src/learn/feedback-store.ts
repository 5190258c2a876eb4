/**
 * The SQL of the feedback intake (feedback-intake.ts; its replay, feedback-local.ts): one lookup
 * of earlier feedback and decisions for a whole batch, and one multi-row INSERT ... ON CONFLICT
 * DO NOTHING.
 */
import type { Queryable } from '../registry/db.js';
import { featuresArray } from './decision-chunk.js';
import { contextOf, type Decision } from './decision.js';
import { chunkPlace, uuidMs } from './event-id.js';
import type { LogRecord } from './local-log.js';

/** What the join needs of a decision row. */
export interface JoinRow {
  id: string;
  seen: boolean;
  d_event_id: string | null;
  d_at_ms: number | null;
  model: string | null;
  variant: string | null;
  version: string | null;
  d_unit_id: string | null;
  propensity: number | null;
  route_gen: number | null;
  action: number | null;
  features?: number[] | null;
  context?: Uint8Array | null;
}

/** A feedback row to insert. */
export interface Row {
  eventId: string;
  reward: number;
  unitId: string | undefined;
  at: number;
  receivedAt: number;
  decision: Decision | undefined;
  viaLocalLog: boolean;
}

/**
 * For each id: whether feedback is stored for it already, and its decision if logged, with its
 * context. The ids go in as one JSON text parameter (the same on both drivers, whatever the
 * batch size), each with what its UUIDv7 carries (time, chunk tag and row): a decision offered
 * on its own is a row of `decisions` (by primary key); a thread's is in a `decision_chunks`
 * row, found by its tag (migration 013) or, untagged, by its span and directory (012), and its
 * row is read and parsed alone. Ids in `known` (decisions the caller has from memory) are not
 * searched for in the chunks.
 */
export async function lookUp(tx: Queryable, ids: string[], known?: ReadonlyMap<string, unknown>): Promise<Map<string, JoinRow>> {
  if (known !== undefined && ids.every((id) => known.has(id))) return seenOnly(tx, ids);
  const rows = await tx.query<JoinRow & Record<string, unknown>>(
    `SELECT i.id, f.event_id IS NOT NULL AS seen,
            coalesce(d.event_id, x.e) AS d_event_id,
            coalesce(round(extract(epoch FROM d.at) * 1000)::float8, x.a) AS d_at_ms,
            coalesce(d.model, x.m) AS model, coalesce(d.variant, x.v) AS variant, coalesce(d.version, x.ver) AS version,
            CASE WHEN d.event_id IS NOT NULL THEN d.unit_id ELSE x.u END AS d_unit_id,
            coalesce(d.propensity, x.p) AS propensity, coalesce(d.route_gen, x.g)::float8 AS route_gen,
            CASE WHEN d.event_id IS NOT NULL THEN d.action ELSE x.k END AS action,
            d.features, CASE WHEN d.event_id IS NOT NULL THEN d.context ELSE x.context END AS context
       FROM jsonb_to_recordset($1::text::jsonb) AS i(id text, t int8, g integer, k integer)
       LEFT JOIN feedback_events f ON f.event_id = i.id
       LEFT JOIN decisions d ON d.event_id = i.id
       LEFT JOIN LATERAL (
         -- The chunk that holds the id, and the id's row k there. A tagged chunk: the one with
         -- the tag the id carries whose directory (20 bytes per row: the id's 16, then the row's
         -- offset) has the id at row k, the index it carries (migration 013). An untagged one:
         -- one whose span holds the id's time and whose directory has the id, found by a byte
         -- search (a match off the 20-byte grid would need 16 bytes of two neighbouring ids to
         -- equal this one); searched only when no tagged chunk has it (LIMIT over UNION ALL).
         -- Then the row: from its offset to the next row's, less the comma, or to the end. A
         -- substring of an uncompressed out-of-line value reads only the part it returns. A
         -- short row (migration 014) names its variant in the chunk's variants, and its id and
         -- time are the id's (its directory entry is the id, case aside). OFFSET 0 and LIMIT
         -- keep each step from being inlined, and so evaluated again, where it is used.
         SELECT coalesce(r.e, lower(i.id)) AS e, coalesce(r.a, i.t::float8) AS a,
                coalesce(r.m, h.variants -> r.x ->> 0) AS m, coalesce(r.v, h.variants -> r.x ->> 1) AS v,
                coalesce(r.ver, h.variants -> r.x ->> 2) AS ver, r.u, r.p,
                coalesce(r.g, (h.variants -> r.x ->> 3)::bigint) AS g, r.k,
                CASE WHEN r.o IS NULL THEN NULL ELSE substring(h.contexts FROM r.o + 1 FOR r.l) END AS context
           FROM (SELECT * FROM (
                   (SELECT c.rows, c.contexts, c.dir, c.n, c.variants, i.k AS k
                      FROM decision_chunks c
                     WHERE i.g IS NOT NULL AND d.event_id IS NULL AND c.tag = i.g AND c.n > i.k
                       AND substring(c.dir FROM i.k * 20 + 1 FOR 16) = decode(replace(i.id, '-', ''), 'hex')
                     LIMIT 1)
                   UNION ALL
                   (SELECT c.rows, c.contexts, c.dir, c.n, c.variants, (t.pos - 1) / 20 AS k
                      FROM decision_chunks c,
                           LATERAL (SELECT position(decode(replace(i.id, '-', ''), 'hex') IN c.dir) AS pos OFFSET 0) t
                     WHERE i.t IS NOT NULL AND d.event_id IS NULL AND c.tag IS NULL AND c.span @> i.t
                       AND t.pos > 0 AND (t.pos - 1) % 20 = 0
                     LIMIT 1)) u
                 LIMIT 1) h,
                LATERAL (SELECT (get_byte(h.dir, h.k * 20 + 16) << 24) | (get_byte(h.dir, h.k * 20 + 17) << 16)
                                | (get_byte(h.dir, h.k * 20 + 18) << 8) | get_byte(h.dir, h.k * 20 + 19) AS at,
                                CASE WHEN h.k = h.n - 1 THEN octet_length(h.rows)
                                     ELSE ((get_byte(h.dir, h.k * 20 + 36) << 24) | (get_byte(h.dir, h.k * 20 + 37) << 16)
                                           | (get_byte(h.dir, h.k * 20 + 38) << 8) | get_byte(h.dir, h.k * 20 + 39)) - 1 END AS stop
                          OFFSET 0) q,
                jsonb_to_record(convert_from(substring(h.rows FROM q.at + 1 FOR q.stop - q.at), 'UTF8')::jsonb)
                  AS r(e text, a float8, m text, v text, ver text, u text, p float8, g bigint, k integer, o integer, l integer, x integer)) x ON true`,
    [JSON.stringify(ids.map((id) => {
      const place = known?.has(id) ? undefined : chunkPlace(id);
      return place === undefined ? { id } : { id, t: uuidMs(id), g: place.tag, k: place.index };
    }))],
  );
  const out = new Map<string, JoinRow>();
  for (const r of rows) out.set(r.id, r);
  return out;
}

/** Whether feedback is stored for each id already, when every decision is known (a smaller statement to plan and run). */
async function seenOnly(tx: Queryable, ids: string[]): Promise<Map<string, JoinRow>> {
  const rows = await tx.query<{ id: string; seen: boolean }>(
    `SELECT i.id, f.event_id IS NOT NULL AS seen
       FROM jsonb_array_elements_text($1::text::jsonb) AS i(id)
       LEFT JOIN feedback_events f ON f.event_id = i.id`,
    [JSON.stringify(ids)],
  );
  const out = new Map<string, JoinRow>();
  for (const r of rows) {
    out.set(r.id, { id: r.id, seen: r.seen, d_event_id: null, d_at_ms: null, model: null, variant: null, version: null, d_unit_id: null, propensity: null, route_gen: null, action: null });
  }
  return out;
}

export function rowDecision(r: JoinRow, id: string): Decision | undefined {
  if (r.d_event_id === null) return undefined;
  const d: Decision = {
    eventId: id,
    at: Number(r.d_at_ms),
    model: r.model!,
    variant: r.variant!,
    version: r.version!,
    propensity: Number(r.propensity),
    routeGen: Number(r.route_gen),
  };
  if (r.d_unit_id !== null) d.unitId = r.d_unit_id;
  if (r.action !== null) d.action = Number(r.action);
  const features = contextOf(r.context, r.features);
  if (features) d.features = features;
  return d;
}

export function loggedDecision(r: LogRecord): Decision | undefined {
  if (!r.d) return undefined;
  return { eventId: r.e, ...r.d };
}

/**
 * One multi-row INSERT; returns the ids actually inserted (the others were stored already, or
 * by a transaction beside this one that committed first: the INSERT waits for it).
 * The rows go in as one JSON text parameter expanded by jsonb_to_recordset: the same on both
 * drivers, and far cheaper to send and plan than 14 parameters per row (bench feedback on
 * PostgreSQL: 10.7k -> 34.2k events/s). Numbers survive exactly (JSON doubles are shortest
 * round-trip, and PostgreSQL rounds the decimal back to the same double). The decisions'
 * contexts go beside them as one binary bytea[] (kept with the feedback: off-policy evaluation
 * reads them from there).
 */
export async function insertRows(tx: Queryable, unsorted: Row[]): Promise<Set<string>> {
  if (unsorted.length === 0) return new Set();
  // In event id order: the order the INSERT takes the ids' locks in, so that batches inserting
  // some of the same ids side by side (FeedbackIntake's concurrent batches, replicas) wait for
  // one another in turn and never in a cycle.
  const rows = [...unsorted].sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
  const json = JSON.stringify(rows.map((r) => {
    const d = r.decision;
    return {
      e: r.eventId, r: r.reward, u: r.unitId ?? null, a: r.at, t: r.receivedAt, j: d !== undefined, l: r.viaLocalLog,
      da: d?.at ?? null, m: d?.model ?? null, v: d?.variant ?? null, ver: d?.version ?? null, p: d?.propensity ?? null, g: d?.routeGen ?? null, k: d?.action ?? null, du: d?.unitId ?? null,
    };
  }));
  const inserted = await tx.query<{ event_id: string }>(
    `INSERT INTO feedback_events (event_id, reward, unit_id, at, received_at, joined, decided_at, model, variant, version, propensity, route_gen, via_local_log, action, decision_unit_id, context)
     SELECT e, r, u, to_timestamp(a / 1000), to_timestamp(t / 1000), j, to_timestamp(da / 1000), m, v, ver, p, g, l, k, du, c
       FROM ROWS FROM (jsonb_to_recordset($1::text::jsonb)
         AS (e text, r float8, u text, a float8, t float8, j boolean, l boolean, da float8, m text, v text, ver text, p float8, g bigint, k integer, du text),
                       unnest($2::bytea[])) AS x(e, r, u, a, t, j, l, da, m, v, ver, p, g, k, du, c)
     ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
    [json, featuresArray(rows.map((r) => r.decision?.features))],
  );
  return new Set(inserted.map((r) => r.event_id));
}
