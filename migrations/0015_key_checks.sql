-- Key check values: a fingerprint of each key the database was started with (never the
-- key itself), recorded at the first start, so that a process given another key refuses
-- to start instead of writing events under a second key.
CREATE TABLE key_checks (
    name text PRIMARY KEY,
    check_value text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
