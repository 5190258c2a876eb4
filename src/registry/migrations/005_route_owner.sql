-- Route owners (DESIGN.md "Route ... owner (manual, experiment, deployment)"): who put a
-- model's route in force. Routes stored before this migration were all set by hand: 'manual'.
-- A change by another owner over an experiment's or a deployment's route needs `force`
-- (src/registry/routes.ts); the check runs under the model's row lock, not here.
ALTER TABLE routes ADD COLUMN owner text NOT NULL DEFAULT 'manual'
  CHECK (owner IN ('manual', 'experiment', 'deployment'));

-- Route changes' audit rows say on whose behalf the change was made (`route_owner`) and, when
-- it replaced a route of another owner with `force`, whose route that was (`route_forced_over`,
-- NULL otherwise). The audit log is append-only (a trigger refuses UPDATE), so route rows written
-- before this migration keep route_owner NULL: they were all manual, and are read as such
-- (src/registry/rows.ts); NOT VALID leaves them be while every new route row must say its owner.
ALTER TABLE model_lineage ADD COLUMN route_owner text
  CHECK (route_owner IS NULL OR route_owner IN ('manual', 'experiment', 'deployment'));
ALTER TABLE model_lineage ADD COLUMN route_forced_over text
  CHECK (route_forced_over IS NULL OR route_forced_over IN ('manual', 'experiment', 'deployment'));
ALTER TABLE model_lineage ADD CONSTRAINT model_lineage_route_owner
  CHECK (action NOT IN ('route_set', 'route_clear') OR route_owner IS NOT NULL) NOT VALID;
