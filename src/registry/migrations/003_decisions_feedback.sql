-- Decisions (one per routed answer) and the feedback joined to them (src/learn).
-- No foreign key between them: a decision may be committed after its feedback (it waits in
-- the decision buffer), or never (a full buffer drops decisions); feedback copies the
-- decision's fields it was joined with, so aggregates need no join.
CREATE TABLE decisions (
  event_id text PRIMARY KEY,
  at timestamptz NOT NULL,
  model text NOT NULL,
  variant text NOT NULL,
  version text NOT NULL,
  unit_id text,
  propensity double precision NOT NULL,
  route_gen bigint NOT NULL,
  -- the input features, only when the route logs them (float32 values, exactly)
  features real[]
);
CREATE INDEX decisions_model_at ON decisions (model, at);

CREATE TABLE feedback_events (
  event_id text PRIMARY KEY,
  reward double precision NOT NULL,
  unit_id text,
  -- when the outcome happened (the client's `at`, else when it was received)
  at timestamptz NOT NULL,
  -- when Sluice acknowledged it
  received_at timestamptz NOT NULL,
  -- false: stored from the local log with no decision found to join (see src/learn)
  joined boolean NOT NULL,
  decided_at timestamptz,
  model text,
  variant text,
  version text,
  propensity double precision,
  route_gen bigint,
  -- acknowledged from the local log while the database was unreachable, replayed later
  via_local_log boolean NOT NULL DEFAULT false
);
CREATE INDEX feedback_events_model_at ON feedback_events (model, at);
