-- Outbound deliveries: the operator's and the pump's read model (projection
-- "deliveries_view" of the deliveries log), the pump's dispatch leases, and the
-- schema of dramatiq's PostgreSQL broker (dramatiq-pg 0.x, schema "dramatiq").

CREATE TABLE rm_deliveries (
    id uuid PRIMARY KEY,
    channel text NOT NULL,
    recipient text NOT NULL,
    message_type text NOT NULL,
    cause text NOT NULL,
    cause_at timestamptz NOT NULL,
    ordering_key text NOT NULL,
    position bigint NOT NULL,
    control_id text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_code text NOT NULL DEFAULT '',
    last_detail text NOT NULL DEFAULT '',
    dead_reason text NOT NULL DEFAULT '',
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX rm_deliveries_pending ON rm_deliveries (recipient, ordering_key, cause_at, position)
    WHERE status IN ('queued', 'retrying', 'ambiguous');
CREATE INDEX rm_deliveries_status ON rm_deliveries (status, channel, created_at);

CREATE TABLE rm_delivery_attempts (
    delivery_id uuid NOT NULL,
    version integer NOT NULL,
    kind text NOT NULL,          -- attempt | dead_lettered | redriven
    number integer NOT NULL DEFAULT 0,
    outcome text NOT NULL DEFAULT '',
    code text NOT NULL DEFAULT '',
    detail text NOT NULL DEFAULT '',
    at timestamptz NOT NULL,
    next_attempt_at timestamptz,
    actor_id text NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, version)
);

-- Which attempt of which delivery the pump handed to the task queue, and when:
-- a lease, so a task lost with a killed worker is handed out again.
CREATE TABLE delivery_dispatch (
    delivery_id uuid NOT NULL,
    attempts integer NOT NULL,
    dispatched_at timestamptz NOT NULL,
    PRIMARY KEY (delivery_id, attempts)
);

CREATE SCHEMA IF NOT EXISTS dramatiq;
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'dramatiq' AND t.typname = 'state'
    ) THEN
        CREATE TYPE dramatiq.state AS ENUM ('queued', 'consumed', 'rejected', 'done');
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS dramatiq.queue (
    message_id uuid PRIMARY KEY,
    queue_name text NOT NULL DEFAULT 'default',
    "state" dramatiq.state,
    mtime timestamptz DEFAULT (now() AT TIME ZONE 'UTC'),
    message jsonb,
    "result" jsonb,
    result_ttl timestamptz
);
CREATE INDEX IF NOT EXISTS queue_state_mtime ON dramatiq.queue ("state", mtime);
