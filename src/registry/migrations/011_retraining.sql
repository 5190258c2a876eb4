-- Retraining requests (issue #15, src/control/retraining): what asked for a model to be
-- retrained, and why. The offline trainer of a later issue consumes them; until then they are
-- recorded here and POSTed to SLUICE_RETRAIN_WEBHOOK.
CREATE TABLE retraining_requests (
  id bigserial PRIMARY KEY,
  model text NOT NULL REFERENCES models (name),
  -- The version whose behaviour prompted it (NULL: the model as a whole).
  version text,
  trigger text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'performance', 'drift')),
  reason text NOT NULL,
  -- What the trigger saw (an alert's rule, value and labels; a schedule's period).
  details jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
  -- The API key NAME of a manual request, else the controller's name.
  actor text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX retraining_requests_model ON retraining_requests (model, trigger, created_at);

-- The audit trail is the table itself: requests are never changed or removed.
CREATE FUNCTION retraining_requests_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'retraining requests are append-only' USING ERRCODE = 'SL001';
END
$$;
CREATE TRIGGER retraining_requests_append_only BEFORE UPDATE OR DELETE ON retraining_requests
  FOR EACH ROW EXECUTE FUNCTION retraining_requests_append_only();

-- A model retrained on a schedule: a request every `every_s` seconds, the next at `next_at`.
CREATE TABLE retraining_schedules (
  model text PRIMARY KEY REFERENCES models (name),
  every_s bigint NOT NULL CHECK (every_s >= 60),
  next_at timestamptz NOT NULL,
  updated_by text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
