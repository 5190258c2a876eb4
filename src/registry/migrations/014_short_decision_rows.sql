-- Short decision rows (issue #12): a row an I/O thread writes for a decision of its own making
-- (its event id made by the chunk's builder, its time the one the id carries: every decision on
-- the request path) no longer repeats what the chunk already holds. Its event id is its entry in
-- `dir` (the id's 16 bytes), its time is in that id (a UUIDv7's first 48 bits), and its model,
-- variant, version and route generation are those of entry "x" of the chunk's `variants`, a
-- JSON array of [model, variant, version, route generation]. What stays in the row: x, p, u, k,
-- o, l. Rows written whole (keys e, a, m, v, ver, g, as migration 012 describes) are still
-- written for decisions with an id of another making, and every chunk stored before this
-- migration has only them: readers take a row's own field when it has one.
--
-- Why: the embedded database's CPU per decision written grows with its bytes. Chunks of 256
-- decisions, 20 per INSERT, on PGlite, CPU of the whole process per decision (interleaved, 3
-- runs): ~145-byte rows 2.8-3.7 µs, 80-byte 2.2-2.6 µs, 35-byte 1.4-1.9 µs (2026-12-04). A
-- routed request's whole rows were ~145 bytes (`npm run bench -- routing`: route/default 0.835,
-- against 0.92-0.97 with every decision dropped before the database, same day); short ones are
-- ~35.
ALTER TABLE decision_chunks ADD COLUMN variants jsonb;

-- The directory is stored uncompressed too. With rows this short, a chunk's rows (~6-9 KB for
-- 256) no longer exceed the row size PostgreSQL aims for (toast_tuple_target) on their own, so
-- the toaster, before moving them out of line, compressed the directory (pglz, its only
-- compressible column left): ~10% of the embedded database thread's CPU under
-- `npm run bench -- routing` (CPU profile, 2026-12-04), and every lookup decompressed it.
-- EXTERNAL keeps it from being compressed; it stays in the table's row (the rows go out first,
-- as the largest), and goes out of line, uncompressed, only for a chunk of over ~400 rows.
ALTER TABLE decision_chunks ALTER COLUMN dir SET STORAGE EXTERNAL;

-- Row i's (from 0) event id and time, from the chunk's directory (decision-chunk.ts): the
-- 16 bytes read as a UUID, and its first 6 bytes as an integer.
CREATE FUNCTION decision_chunk_event_id(dir bytea, i integer) RETURNS text
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT encode(substring(dir FROM i * 20 + 1 FOR 16), 'hex')::uuid::text $$;
CREATE FUNCTION decision_chunk_ms(dir bytea, i integer) RETURNS float8
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT ('x' || encode(substring(dir FROM i * 20 + 1 FOR 6), 'hex'))::bit(48)::bigint::float8 $$;

CREATE OR REPLACE VIEW all_decisions AS
  SELECT event_id, at, model, variant, version, unit_id, propensity, route_gen, features, context, action
    FROM decisions
  UNION ALL
  SELECT coalesce(r.e, decision_chunk_event_id(c.dir, r.i::integer - 1)),
         to_timestamp(coalesce(r.a, decision_chunk_ms(c.dir, r.i::integer - 1)) / 1000),
         coalesce(r.m, c.variants -> r.x ->> 0), coalesce(r.v, c.variants -> r.x ->> 1), coalesce(r.ver, c.variants -> r.x ->> 2),
         r.u, r.p, coalesce(r.g, (c.variants -> r.x ->> 3)::bigint), NULL::real[],
         CASE WHEN r.l IS NULL THEN NULL ELSE substring(c.contexts FROM r.o + 1 FOR r.l) END, r.k
    FROM decision_chunks c,
         ROWS FROM (jsonb_to_recordset(('[' || convert_from(c.rows, 'UTF8') || ']')::jsonb)
                      AS (e text, a float8, m text, v text, ver text, u text, p float8, g bigint, k integer, o integer, l integer, x integer))
           WITH ORDINALITY AS r(e, a, m, v, ver, u, p, g, k, o, l, x, i);

CREATE OR REPLACE FUNCTION experiment_units_from_decision_chunks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM experiment_periods WHERE active) THEN RETURN NULL; END IF;
  PERFORM experiment_units_expose(array_agg(coalesce(r.e, decision_chunk_event_id(c.dir, r.i::integer - 1))),
                                  array_agg(to_timestamp(coalesce(r.a, decision_chunk_ms(c.dir, r.i::integer - 1)) / 1000)),
                                  array_agg(coalesce(r.m, c.variants -> r.x ->> 0)), array_agg(coalesce(r.v, c.variants -> r.x ->> 1)),
                                  array_agg(r.u), array_agg(coalesce(r.g, (c.variants -> r.x ->> 3)::bigint)))
     FROM added c,
          ROWS FROM (jsonb_to_recordset(('[' || convert_from(c.rows, 'UTF8') || ']')::jsonb)
                       AS (e text, a float8, m text, v text, u text, g bigint, x integer))
            WITH ORDINALITY AS r(e, a, m, v, u, g, x, i);
  RETURN NULL;
END
$$;
