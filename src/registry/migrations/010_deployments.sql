-- Deployments (issue #15, src/control/deployments): a canary, blue-green or shadow rollout of a
-- candidate version. Its controller owns the model's route while it runs (routes.owner =
-- 'deployment'); its state here is all a replica needs to take over the controller.
CREATE TABLE deployments (
  id bigserial PRIMARY KEY,
  model text NOT NULL REFERENCES models (name),
  kind text NOT NULL CHECK (kind IN ('canary', 'blue-green', 'shadow')),
  -- The deployment in its API JSON form (src/control/deployments/spec.ts).
  spec jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
  stable_version text NOT NULL,
  candidate_version text NOT NULL,
  -- running | paused: in progress; promoted | rolled_back | aborted: done.
  status text NOT NULL CHECK (status IN ('running', 'paused', 'promoted', 'rolled_back', 'aborted')),
  -- The step in force (canary: index into its traffic steps; blue-green: 0 switch, 1 bake;
  -- shadow: 0) and since when (the step's window starts there).
  step integer NOT NULL DEFAULT 0,
  step_started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- Blue-green: the stable version's window from before the switch (what the bake compares
  -- the candidate with; src/control/deployments/judge.ts VersionWindow).
  baseline jsonb,
  -- The last verdict of the judge, and why the deployment ended.
  last_verdict jsonb,
  outcome jsonb,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz
);
-- One deployment in progress per model: it owns the model's route.
CREATE UNIQUE INDEX deployments_one_active ON deployments (model) WHERE status IN ('running', 'paused');

-- Every transition of a deployment (the audit trail of the controller and of the operators
-- who paused, resumed, aborted or promoted it). Append-only, like the registry's audit log.
CREATE TABLE deployment_events (
  id bigserial PRIMARY KEY,
  deployment_id bigint NOT NULL REFERENCES deployments (id),
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  action text NOT NULL,
  from_status text NOT NULL,
  to_status text NOT NULL,
  step integer NOT NULL,
  -- Traffic share of the candidate after the transition (0..1).
  share double precision NOT NULL,
  actor text NOT NULL,
  reason text NOT NULL DEFAULT '',
  verdict jsonb
);
CREATE INDEX deployment_events_deployment ON deployment_events (deployment_id, id);
CREATE FUNCTION deployment_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'deployment events are append-only' USING ERRCODE = 'SL001';
END
$$;
CREATE TRIGGER deployment_events_append_only BEFORE UPDATE OR DELETE ON deployment_events
  FOR EACH ROW EXECUTE FUNCTION deployment_events_append_only();
