-- A/B/n experiments (issue #14, src/control/experiments). An experiment owns its model's route
-- while it runs (routes.owner = 'experiment'); every route generation it put in force is one
-- row of `experiment_periods` (its weight history), so a decision's (model, route_gen) names
-- the experiment and the weights it was drawn under.
CREATE TABLE experiments (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  model text NOT NULL REFERENCES models (name),
  -- The experiment in its API JSON form (src/control/experiments/spec.ts).
  spec jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
  status text NOT NULL CHECK (status IN ('running', 'stopped')),
  -- Why it stopped, when it has: {action: winner | futility | harm | manual, variant?, reason}
  outcome jsonb,
  -- The version promoted to production from it (NULL until one is).
  promoted_version text,
  -- Running figures the sequential test keeps between looks, and the last analysis.
  state jsonb NOT NULL DEFAULT '{}',
  last_results jsonb,
  analyzed_at timestamptz,
  created_by text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  stopped_at timestamptz
);
-- One running experiment per model: it owns the model's route.
CREATE UNIQUE INDEX experiments_one_running ON experiments (model) WHERE status = 'running';

CREATE TABLE experiment_periods (
  model text NOT NULL,
  route_gen bigint NOT NULL,
  experiment_id bigint NOT NULL REFERENCES experiments (id),
  -- The variants' weights in force in this period, in the spec's variant order.
  weights jsonb NOT NULL,
  -- true: the randomisation unit is the request (assignment "random"), so a unit is an event.
  per_event boolean NOT NULL,
  -- false once the experiment stopped: its figures are final.
  active boolean NOT NULL DEFAULT true,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (model, route_gen)
);
CREATE INDEX experiment_periods_active ON experiment_periods (experiment_id) WHERE active;

-- One row per unit of a running experiment, kept by the triggers below in the same statement
-- as the decision or feedback rows that change it (so a unit is counted exactly once per stored
-- row, on every path that stores them: the decision log, feedback intake, local-log replay).
CREATE TABLE experiment_units (
  experiment_id bigint NOT NULL,
  unit text NOT NULL,
  -- The variant of the unit's first stored decision or feedback (intention to treat), and its
  -- period. Fixed for the unit's life: its figures stay in that variant's sums.
  variant text NOT NULL,
  route_gen bigint NOT NULL,
  first_at timestamptz NOT NULL,
  -- Seen under another variant too (a weight change moved it, or it had no stable unit id).
  crossed boolean NOT NULL DEFAULT false,
  -- Joined feedback: events, the sum of their rewards, whether any reward was > 0.
  events integer NOT NULL DEFAULT 0,
  reward_sum double precision NOT NULL DEFAULT 0,
  converted boolean NOT NULL DEFAULT false,
  -- What the last update replaced (NULL on a row just inserted): the triggers read the change
  -- from the upsert's own RETURNING, which sees the row under its lock, so two transactions
  -- changing one unit at once (two replicas, or a decision batch and a feedback batch) each
  -- add exactly their own change to the sums.
  prev_events integer,
  prev_reward_sum double precision,
  prev_converted boolean,
  prev_crossed boolean,
  -- A pre-period covariate for CUPED, when the operator supplied one.
  covariate double precision,
  PRIMARY KEY (experiment_id, unit)
);
-- CUPED reads only the units that have a covariate.
CREATE INDEX experiment_units_covariate ON experiment_units (experiment_id) WHERE covariate IS NOT NULL;

-- Per experiment, variant and period (the period of each unit's first row): sums over units,
-- kept by the triggers with the change of each unit, so an analysis reads a few rows whatever
-- the number of units. Per unit x: `mean_*` over units with feedback, x = reward_sum / events;
-- `sum_*` over every unit, x = reward_sum; `converted` counts units with x = 1 of the rate.
CREATE TABLE experiment_sums (
  experiment_id bigint NOT NULL,
  variant text NOT NULL,
  route_gen bigint NOT NULL,
  units bigint NOT NULL DEFAULT 0,
  crossed bigint NOT NULL DEFAULT 0,
  with_feedback bigint NOT NULL DEFAULT 0,
  mean_sum double precision NOT NULL DEFAULT 0,
  mean_sumsq double precision NOT NULL DEFAULT 0,
  sum_sum double precision NOT NULL DEFAULT 0,
  sum_sumsq double precision NOT NULL DEFAULT 0,
  converted bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (experiment_id, variant, route_gen)
);

-- Serving figures per variant for guardrails, from each replica's engine (cumulative since the
-- replica's process first saw the experiment running; `replica` names the process): requests
-- to the variant's version and how many failed; the routed answers' latencies (count, sum and
-- sum of squares in ms).
CREATE TABLE experiment_serving (
  experiment_id bigint NOT NULL,
  replica text NOT NULL,
  variant text NOT NULL,
  requests bigint NOT NULL,
  errors bigint NOT NULL,
  latencies bigint NOT NULL,
  latency_sum_ms double precision NOT NULL,
  latency_sumsq_ms double precision NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (experiment_id, replica, variant)
);

-- Feedback rows keep the unit id of the decision they joined (the client's `unit_id` may be
-- absent or another id): the experiment's unit is the one that was randomised.
ALTER TABLE feedback_events ADD COLUMN decision_unit_id text;

-- A promotion made by an experiment carries the analysis that chose the winner.
ALTER TABLE model_lineage ADD COLUMN analysis jsonb;

-- Decisions under an active experiment's route expose their unit. Statement-level with a
-- transition table: one join per INSERT batch, and a quick exit when nothing runs. A unit
-- decided again changes only when it is first seen under another variant (crossed).
CREATE FUNCTION experiment_units_from_decisions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM experiment_periods WHERE active) THEN RETURN NULL; END IF;
  -- A decision never changes a unit's outcome: only new units and units newly crossed count.
  WITH up AS (
    INSERT INTO experiment_units AS u (experiment_id, unit, variant, route_gen, first_at, crossed)
    SELECT p.experiment_id, CASE WHEN p.per_event THEN d.event_id ELSE d.unit_id END,
           (array_agg(d.variant ORDER BY d.at))[1], (array_agg(d.route_gen ORDER BY d.at))[1],
           min(d.at), count(DISTINCT d.variant) > 1
      FROM added d JOIN experiment_periods p ON p.active AND p.model = d.model AND p.route_gen = d.route_gen
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
  RETURN NULL;
END
$$;
CREATE TRIGGER experiment_units_from_decisions AFTER INSERT ON decisions
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION experiment_units_from_decisions();

-- Joined feedback under an active experiment's route adds to its unit's outcome. A unit whose
-- decision row is not stored yet (feedback can overtake its decision) starts from the feedback.
CREATE FUNCTION experiment_units_from_feedback() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM experiment_periods WHERE active) THEN RETURN NULL; END IF;
  WITH up AS (
    INSERT INTO experiment_units AS u (experiment_id, unit, variant, route_gen, first_at, crossed, events, reward_sum, converted)
    SELECT p.experiment_id, CASE WHEN p.per_event THEN f.event_id ELSE f.decision_unit_id END,
           (array_agg(f.variant ORDER BY f.decided_at))[1], (array_agg(f.route_gen ORDER BY f.decided_at))[1],
           min(f.decided_at), count(DISTINCT f.variant) > 1, count(*), sum(f.reward), bool_or(f.reward > 0)
      FROM added f JOIN experiment_periods p ON p.active AND p.model = f.model AND p.route_gen = f.route_gen
     WHERE f.joined AND (p.per_event OR (f.decision_unit_id IS NOT NULL AND f.decision_unit_id <> ''))
     GROUP BY 1, 2
    ON CONFLICT (experiment_id, unit) DO UPDATE
      SET events = u.events + EXCLUDED.events,
          reward_sum = u.reward_sum + EXCLUDED.reward_sum,
          converted = u.converted OR EXCLUDED.converted,
          crossed = u.crossed OR EXCLUDED.crossed OR u.variant <> EXCLUDED.variant,
          prev_events = u.events, prev_reward_sum = u.reward_sum, prev_converted = u.converted, prev_crossed = u.crossed
    RETURNING experiment_id, variant, route_gen, crossed, events, reward_sum, converted, prev_events, prev_reward_sum, prev_converted, prev_crossed),
  -- Each unit's change: x is its mean reward (0 without feedback), px what it was.
  d AS (
    SELECT up.*, CASE WHEN events > 0 THEN reward_sum / events ELSE 0 END AS x,
           CASE WHEN coalesce(prev_events, 0) > 0 THEN prev_reward_sum / prev_events ELSE 0 END AS px
      FROM up)
  INSERT INTO experiment_sums AS s (experiment_id, variant, route_gen, units, crossed, with_feedback, mean_sum, mean_sumsq, sum_sum, sum_sumsq, converted)
  SELECT experiment_id, variant, route_gen,
         count(*) FILTER (WHERE prev_events IS NULL),
         count(*) FILTER (WHERE crossed AND NOT coalesce(prev_crossed, false)),
         sum((events > 0)::int - (coalesce(prev_events, 0) > 0)::int),
         sum(x - px), sum(x * x - px * px),
         sum(reward_sum - coalesce(prev_reward_sum, 0)),
         sum(reward_sum * reward_sum - coalesce(prev_reward_sum, 0) ^ 2),
         sum(converted::int - coalesce(prev_converted, false)::int)
    FROM d GROUP BY 1, 2, 3
  ON CONFLICT (experiment_id, variant, route_gen) DO UPDATE
    SET units = s.units + EXCLUDED.units, crossed = s.crossed + EXCLUDED.crossed,
        with_feedback = s.with_feedback + EXCLUDED.with_feedback,
        mean_sum = s.mean_sum + EXCLUDED.mean_sum, mean_sumsq = s.mean_sumsq + EXCLUDED.mean_sumsq,
        sum_sum = s.sum_sum + EXCLUDED.sum_sum, sum_sumsq = s.sum_sumsq + EXCLUDED.sum_sumsq,
        converted = s.converted + EXCLUDED.converted;
  RETURN NULL;
END
$$;
CREATE TRIGGER experiment_units_from_feedback AFTER INSERT ON feedback_events
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION experiment_units_from_feedback();
