-- Emergency access to one patient's records, with its reason and time limit.
CREATE TABLE break_glass_grants (
    id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    reason text NOT NULL,
    granted_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX break_glass_lookup ON break_glass_grants (account_id, patient_id, expires_at);

-- Alerts for compliance (break-glass now; more kinds later).
CREATE TABLE alerts (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    kind text NOT NULL,
    subject_id text NOT NULL,
    detail text NOT NULL,
    acknowledged_at timestamptz
);
