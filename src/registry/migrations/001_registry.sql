-- The model registry: models, immutable versions with a mutable stage, the audit log
-- (lineage), and performance snapshots. Runs identically on PGlite and PostgreSQL.

-- One row per model. Every change to a model's versions or stages first locks this row
-- (SELECT ... FOR UPDATE), which serialises changes per model without blocking other models.
CREATE TABLE models (
  name text PRIMARY KEY,
  -- Versions that were production, oldest first: what rollback steps back through.
  production_history jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(production_history) = 'array'),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_versions (
  model text NOT NULL REFERENCES models (name),
  version text NOT NULL,
  -- Registration order (ties in created_at are possible).
  seq bigserial NOT NULL UNIQUE,
  kind text NOT NULL,
  signature jsonb NOT NULL,
  -- The whole manifest in its model.json form, so the version can be served as registered.
  manifest jsonb NOT NULL,
  artifact_key text NOT NULL,
  artifact_file text NOT NULL,
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  training_config jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(training_config) = 'object'),
  hyperparameters jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(hyperparameters) = 'object'),
  metrics jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics) = 'object'),
  cv_scores jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(cv_scores) = 'array'),
  tags jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(tags) = 'array'),
  notes text NOT NULL DEFAULT '',
  parent_version text,
  -- The API key NAME that registered it (never the secret).
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- The only mutable part of a version.
  stage text NOT NULL DEFAULT 'development' CHECK (stage IN ('development', 'staging', 'production', 'archived')),
  stage_changed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model, version),
  FOREIGN KEY (model, parent_version) REFERENCES model_versions (model, version)
);

-- At most one production version per model, whatever the application does.
CREATE UNIQUE INDEX model_versions_one_production ON model_versions (model) WHERE stage = 'production';

-- Versions are immutable once registered: only the stage (and when it changed) may be updated,
-- and a version is never deleted (archive it instead). SQLSTATE SL001 names this refusal.
CREATE FUNCTION model_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'model versions are immutable: % % cannot be deleted', OLD.model, OLD.version USING ERRCODE = 'SL001';
  END IF;
  IF (to_jsonb(NEW) - 'stage' - 'stage_changed_at') IS DISTINCT FROM (to_jsonb(OLD) - 'stage' - 'stage_changed_at') THEN
    RAISE EXCEPTION 'model versions are immutable: only the stage of % % can change', OLD.model, OLD.version USING ERRCODE = 'SL001';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER model_versions_immutable BEFORE UPDATE OR DELETE ON model_versions
  FOR EACH ROW EXECUTE FUNCTION model_versions_immutable();

-- The audit log: one row per applied change, written in the change's own transaction.
--   register: to_version registered (from_version = its parent), to_stage 'development'
--   promote:  to_version moved from_stage -> to_stage; when to_stage is production,
--             from_version is the production version it replaced (now archived)
--   rollback: to_version became production again, replacing from_version (now archived)
CREATE TABLE model_lineage (
  id bigserial PRIMARY KEY,
  model text NOT NULL REFERENCES models (name),
  action text NOT NULL CHECK (action IN ('register', 'promote', 'rollback')),
  from_version text,
  to_version text NOT NULL,
  from_stage text,
  to_stage text NOT NULL,
  -- The API key NAME that made the change.
  actor text NOT NULL,
  reason text NOT NULL DEFAULT '',
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX model_lineage_model ON model_lineage (model, id);

-- The audit log is append-only.
CREATE FUNCTION model_lineage_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'SL001';
END
$$;

CREATE TRIGGER model_lineage_append_only BEFORE UPDATE OR DELETE ON model_lineage
  FOR EACH ROW EXECUTE FUNCTION model_lineage_append_only();

-- Serving performance of a version over a window, reported by the engine or a monitor.
CREATE TABLE model_performance (
  id bigserial PRIMARY KEY,
  model text NOT NULL,
  version text NOT NULL,
  prediction_count bigint NOT NULL CHECK (prediction_count >= 0),
  p50_ms double precision CHECK (p50_ms >= 0),
  p95_ms double precision CHECK (p95_ms >= 0),
  p99_ms double precision CHECK (p99_ms >= 0),
  error_rate double precision CHECK (error_rate BETWEEN 0 AND 1),
  cpu_percent double precision CHECK (cpu_percent >= 0),
  memory_bytes bigint CHECK (memory_bytes >= 0),
  -- Anything else a reporter measures (GPU, queue depth...).
  extra jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(extra) = 'object'),
  at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);

CREATE INDEX model_performance_version ON model_performance (model, version, at);
