-- API keys: only a SHA-256 of each secret is stored (see src/auth/keys.ts for why that hash).
CREATE TABLE api_keys (
  name text PRIMARY KEY,
  key_hash text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
  scopes jsonb NOT NULL CHECK (jsonb_typeof(scopes) = 'array'),
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);
