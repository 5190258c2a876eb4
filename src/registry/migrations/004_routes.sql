-- Traffic routes (issue #12): how a model's unversioned requests are spread over its versions.
-- One row per model that has, or had, a route. Every change bumps `generation` (1 for the
-- first), so a replica orders what it hears and a decision names the route that chose it; a
-- clear keeps the row with spec NULL (the model serves its production version again) so the
-- generation never goes back, not even after a clear and a new route.
CREATE TABLE routes (
  model text PRIMARY KEY REFERENCES models (name),
  -- The route in its API JSON form (src/routing/route.ts routeJson); NULL once cleared.
  spec jsonb CHECK (spec IS NULL OR jsonb_typeof(spec) = 'object'),
  generation bigint NOT NULL CHECK (generation > 0),
  -- The API key NAME that made the last change.
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Route changes are audited in the same log as registrations and stage changes:
--   route_set:   `route` is the route put in force, `route_generation` its generation
--   route_clear: the route was removed (the model falls back to production), `route` NULL
-- A route names several versions, so these rows have no to_version / to_stage.
ALTER TABLE model_lineage DROP CONSTRAINT model_lineage_action_check;
ALTER TABLE model_lineage ADD CONSTRAINT model_lineage_action_check
  CHECK (action IN ('register', 'promote', 'rollback', 'route_set', 'route_clear'));
ALTER TABLE model_lineage ALTER COLUMN to_version DROP NOT NULL;
ALTER TABLE model_lineage ALTER COLUMN to_stage DROP NOT NULL;
ALTER TABLE model_lineage ADD CONSTRAINT model_lineage_version_fields
  CHECK (action IN ('route_set', 'route_clear') OR (to_version IS NOT NULL AND to_stage IS NOT NULL));
ALTER TABLE model_lineage ADD COLUMN route jsonb;
ALTER TABLE model_lineage ADD COLUMN route_generation bigint;
