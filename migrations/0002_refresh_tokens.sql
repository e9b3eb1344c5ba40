-- Refresh tokens: only their SHA-256 digests; a family is one sign-in and its rotations.
CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    account_id uuid NOT NULL,
    family_id text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
