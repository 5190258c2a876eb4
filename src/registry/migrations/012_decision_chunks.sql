-- Decisions in chunks (issue #12): an I/O thread's decisions are stored as the chunk it hands
-- over (src/learn/decision-chunk.ts), one row per chunk, instead of one row per decision. A
-- row per decision cost the embedded database ~18-23 us of CPU each (heap row, primary-key and
-- (model, at) index entries, jsonb parsing); at 20,000 routed requests/s that took one of this
-- machine's two cores from serving (`npm run bench -- routing`: route/default 0.54 with the
-- rows written, 0.91 with every decision dropped, 2026-12-03). In chunks the embedded database
-- writes 2.5x the decisions per second, PostgreSQL 1.8x (`npm run bench -- feedback`, same day).
--
-- `rows` holds the chunk's rows as the decision log's JSON objects, comma-separated without
-- brackets, as ASCII bytes (characters beyond ASCII are escaped, so offsets are byte offsets).
-- Keys: e, a, m, v, ver, g, p, u?, k?, o?, l? (event id, time in ms, model, variant, version,
-- route generation, propensity, unit id, action, and the offset and length of the row's
-- context in `contexts`). `contexts` is the chunk's contexts as written by the builder (per row a
-- 32-bit big-endian length, then the float32 bytes). Both are stored out of line uncompressed
-- (STORAGE EXTERNAL): a lookup reads one row's context with substring() without reading the rest,
-- and nothing pays for compressing what is written once and read rarely. Bytes, not text: as
-- text, PostgreSQL walked the rows character by character to turn byte positions into
-- character positions (~0.5 ms of a lookup's ~0.8 ms on PGlite, 2026-12-03).
--
-- A decision is found by its event id: a thread's ids are UUIDv7s whose time lies in the chunk's
-- `span` (ms, inclusive), so only chunks whose span holds that time are searched, each in its
-- directory `dir`: per row 20 bytes, the id's 16 bytes and the row's byte offset in `rows`
-- (src/learn/decision-chunk.ts). The directory (5 KB for 256 rows) stays in the table's row,
-- uncompressed (toast_tuple_target: the toaster moves `rows` and `contexts` out first and stops
-- there), so a lookup reads it, one slice of `rows` and one of `contexts`
-- (src/learn/feedback-store.ts). Decisions offered one by one (DecisionLog.offer,
-- whose ids may be any client's text) stay in `decisions`. `key` is the chunk's first event id:
-- a batch retried after a lost commit stores nothing twice.
CREATE TABLE decision_chunks (
  id bigserial PRIMARY KEY,
  key text NOT NULL UNIQUE,
  span int8range NOT NULL,
  n integer NOT NULL CHECK (n > 0),
  rows bytea NOT NULL,
  contexts bytea,
  dir bytea NOT NULL
) WITH (toast_tuple_target = 8160);
ALTER TABLE decision_chunks ALTER COLUMN rows SET STORAGE EXTERNAL;
ALTER TABLE decision_chunks ALTER COLUMN contexts SET STORAGE EXTERNAL;
CREATE INDEX decision_chunks_span ON decision_chunks USING gist (span);

-- Every decision, whichever way it was stored, one row each (tests, ad-hoc queries; it reads
-- every chunk: not for the serving path).
CREATE VIEW all_decisions AS
  SELECT event_id, at, model, variant, version, unit_id, propensity, route_gen, features, context, action
    FROM decisions
  UNION ALL
  SELECT r.e, to_timestamp(r.a / 1000), r.m, r.v, r.ver, r.u, r.p, r.g, NULL::real[],
         CASE WHEN r.l IS NULL THEN NULL ELSE substring(c.contexts FROM r.o + 1 FOR r.l) END, r.k
    FROM decision_chunks c,
         jsonb_to_recordset(('[' || convert_from(c.rows, 'UTF8') || ']')::jsonb)
           AS r(e text, a float8, m text, v text, ver text, u text, p float8, g bigint, k integer, o integer, l integer);

-- Feedback keeps its decision's context (bandits' and logged routes' features), as it keeps the
-- decision's other fields: off-policy evaluation and learners read one table.
ALTER TABLE feedback_events ADD COLUMN context bytea;
UPDATE feedback_events f SET context = d.context FROM decisions d WHERE d.event_id = f.event_id AND d.context IS NOT NULL;

-- Decisions under an active experiment's route expose their units: migration 008's statement,
-- now a function of the decisions (as arrays, zipped) that both triggers call, the one on
-- `decisions` rows (008's, replaced here) and the one on chunks. Ties in time go by event id (a
-- thread's ids are in the order it decided).
CREATE FUNCTION experiment_units_expose(p_event_ids text[], p_ats timestamptz[], p_models text[],
                                        p_variants text[], p_unit_ids text[], p_route_gens bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  WITH d AS (
    SELECT * FROM unnest(p_event_ids, p_ats, p_models, p_variants, p_unit_ids, p_route_gens)
                    AS d(event_id, at, model, variant, unit_id, route_gen)),
  up AS (
    INSERT INTO experiment_units AS u (experiment_id, unit, variant, route_gen, first_at, crossed)
    SELECT p.experiment_id, CASE WHEN p.per_event THEN d.event_id ELSE d.unit_id END,
           (array_agg(d.variant ORDER BY d.at, d.event_id))[1], (array_agg(d.route_gen ORDER BY d.at, d.event_id))[1],
           min(d.at), count(DISTINCT d.variant) > 1
      FROM d JOIN experiment_periods p ON p.active AND p.model = d.model AND p.route_gen = d.route_gen
     WHERE (p.per_event OR (d.unit_id IS NOT NULL AND d.unit_id <> ''))
       -- most decisions are of units already seen in the same variant: nothing to change
       AND NOT EXISTS (SELECT 1 FROM experiment_units k WHERE k.experiment_id = p.experiment_id
                          AND k.unit = CASE WHEN p.per_event THEN d.event_id ELSE d.unit_id END
                          AND (k.crossed OR k.variant = d.variant))
     GROUP BY 1, 2
    ON CONFLICT (experiment_id, unit) DO UPDATE
      SET crossed = true, prev_events = u.events, prev_reward_sum = u.reward_sum,
          prev_converted = u.converted, prev_crossed = u.crossed
      WHERE NOT u.crossed AND (EXCLUDED.crossed OR u.variant <> EXCLUDED.variant)
    RETURNING experiment_id, variant, route_gen, crossed, prev_events, prev_crossed)
  INSERT INTO experiment_sums AS s (experiment_id, variant, route_gen, units, crossed)
  SELECT experiment_id, variant, route_gen, count(*) FILTER (WHERE prev_events IS NULL),
         count(*) FILTER (WHERE crossed AND NOT coalesce(prev_crossed, false))
    FROM up GROUP BY 1, 2, 3
  ON CONFLICT (experiment_id, variant, route_gen) DO UPDATE
    SET units = s.units + EXCLUDED.units, crossed = s.crossed + EXCLUDED.crossed;
END
$$;

CREATE OR REPLACE FUNCTION experiment_units_from_decisions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM experiment_periods WHERE active) THEN RETURN NULL; END IF;
  PERFORM experiment_units_expose(array_agg(event_id), array_agg(at), array_agg(model), array_agg(variant), array_agg(unit_id), array_agg(route_gen))
     FROM added;
  RETURN NULL;
END
$$;

CREATE FUNCTION experiment_units_from_decision_chunks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM experiment_periods WHERE active) THEN RETURN NULL; END IF;
  PERFORM experiment_units_expose(array_agg(r.e), array_agg(to_timestamp(r.a / 1000)), array_agg(r.m), array_agg(r.v), array_agg(r.u), array_agg(r.g))
     FROM added c, jsonb_to_recordset(('[' || convert_from(c.rows, 'UTF8') || ']')::jsonb) AS r(e text, a float8, m text, v text, u text, g bigint);
  RETURN NULL;
END
$$;
CREATE TRIGGER experiment_units_from_decision_chunks AFTER INSERT ON decision_chunks
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION experiment_units_from_decision_chunks();
