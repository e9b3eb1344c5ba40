-- Request budgets and sign-in lockouts (adapters.limits). Keys (client addresses, account
-- e-mails) are stored only as SHA-256 hex digests, so neither table holds patient data.

-- Fixed-window request counters: one row per bucket, key and window.
CREATE TABLE rate_limit_windows (
    bucket text NOT NULL,
    key_hash text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (bucket, key_hash, window_start)
);
-- Cleanup: a window is useless once it has ended. PostgresRateLimiter.purge(before) deletes
-- the rows with window_end <= before; run it now and then (e.g. hourly with now()).
CREATE INDEX rate_limit_windows_window_end ON rate_limit_windows (window_end);

-- Failed attempts per key, for exponential lockout; a success deletes the key's row.
CREATE TABLE throttle_failures (
    key_hash text PRIMARY KEY,
    failures integer NOT NULL,
    last_failure_at timestamptz NOT NULL,
    locked_until timestamptz
);
-- Cleanup: PostgresThrottle.purge(before) deletes the rows whose failures are forgotten
-- (quiet for the forget period) and whose lock is over by ``before``.
CREATE INDEX throttle_failures_last_failure_at ON throttle_failures (last_failure_at);
