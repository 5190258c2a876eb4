-- Learned state (issue #13, src/learn): checkpoints of a learner's state and the additive
-- deltas replicas exchange between them.
--
-- A checkpoint row is written only after its artifact is completely stored, so a row always
-- names a whole artifact (checkpoints.ts). `watermarks` says which deltas its state includes:
-- {replica: highest seq merged}, the writer's own published deltas included (deltas.ts).
CREATE TABLE checkpoints (
  id bigserial PRIMARY KEY,
  model text NOT NULL,
  version text NOT NULL,
  -- updates applied to reach this state, and feedback events in it
  state bigint NOT NULL CHECK (state >= 0),
  events bigint NOT NULL CHECK (events >= 0),
  -- the replica that wrote it
  replica text NOT NULL,
  watermarks jsonb NOT NULL DEFAULT '{}',
  -- how the artifact is compressed ('gzip'); sha256 and compressed_bytes are of the artifact,
  -- bytes of the state once decompressed
  codec text NOT NULL,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  artifact_key text NOT NULL,
  bytes bigint NOT NULL CHECK (bytes >= 0),
  compressed_bytes bigint NOT NULL CHECK (compressed_bytes >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoints_model_version ON checkpoints (model, version, created_at DESC, id DESC);
-- pruning asks whether another row still names an artifact before deleting it
CREATE INDEX checkpoints_sha256 ON checkpoints (sha256);

-- One row per published delta: `payload` is a Float64Array's bytes (little-endian), added
-- elementwise to the state. `seq` counts 1, 2, 3, ... per (model, version, replica).
CREATE TABLE learner_deltas (
  id bigserial PRIMARY KEY,
  model text NOT NULL,
  version text NOT NULL,
  replica text NOT NULL,
  seq bigint NOT NULL CHECK (seq > 0),
  events bigint NOT NULL CHECK (events >= 0),
  payload bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (model, version, replica, seq)
);
