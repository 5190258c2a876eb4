-- Alerts (issue #15, src/control/alerts): rules created through the admin API (the built-in
-- ones are data in src/control/alerts/builtin.ts), the current state of each alert (one row per
-- rule and label set: that is the deduplication), every state transition, and silences.
CREATE TABLE alert_rules (
  name text PRIMARY KEY,
  -- The rule in its API JSON form (src/control/alerts/rules.ts).
  spec jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE alerts (
  rule text NOT NULL,
  -- The label set as canonical JSON (keys sorted): the row's identity beside the rule.
  labels_key text NOT NULL,
  labels jsonb NOT NULL,
  state text NOT NULL CHECK (state IN ('inactive', 'pending', 'firing', 'resolved')),
  severity text NOT NULL,
  summary text NOT NULL,
  -- The last value read from the rule's source (NULL: the source had none).
  value double precision,
  -- Since when the condition has held (pending or firing), when it last fired and resolved.
  active_since timestamptz,
  fired_at timestamptz,
  resolved_at timestamptz,
  -- A firing notice went out for the current firing (so a resolved notice is owed).
  notified boolean NOT NULL DEFAULT false,
  evaluated_at timestamptz NOT NULL,
  PRIMARY KEY (rule, labels_key)
);
CREATE INDEX alerts_state ON alerts (state);

CREATE TABLE alert_events (
  id bigserial PRIMARY KEY,
  rule text NOT NULL,
  labels jsonb NOT NULL,
  from_state text NOT NULL,
  to_state text NOT NULL,
  value double precision,
  -- Silences that matched at the transition (their ids), and whether a notice went out.
  silenced_by bigint[] NOT NULL DEFAULT '{}',
  notified boolean NOT NULL DEFAULT false,
  at timestamptz NOT NULL
);
CREATE INDEX alert_events_rule ON alert_events (rule, id);

CREATE TABLE silences (
  id bigserial PRIMARY KEY,
  -- [{name, value, op: "=" | "!="}], all of which must hold; name "rule" is the rule's name,
  -- "severity" its severity, anything else a label.
  matchers jsonb NOT NULL CHECK (jsonb_typeof(matchers) = 'array'),
  starts_at timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  comment text NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- A DELETE expires a silence (ends_at moves to then) and keeps it, naming who.
  expired_by text,
  CHECK (ends_at >= starts_at)
);
CREATE INDEX silences_ends_at ON silences (ends_at);
