-- Sessions: one per sign-in; access tokens name theirs (sid) and stop working when it ends.
CREATE TABLE sessions (
    id text PRIMARY KEY,
    account_id uuid NOT NULL,
    amr text[] NOT NULL,
    created_at timestamptz NOT NULL,
    idle_expires_at timestamptz NOT NULL,
    absolute_expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_account ON sessions (account_id) WHERE revoked_at IS NULL;

-- Keys that may be used once: TOTP time steps (no code replay), reset links.
CREATE TABLE used_once (
    key text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX used_once_expires ON used_once (expires_at);
