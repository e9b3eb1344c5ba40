-- Read model of the orders projection: imaging orders from the RIS with their latest
-- result reference (never report text), and results no order claimed (for review).

CREATE TABLE rm_orders (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    status text NOT NULL,
    placer_number text NOT NULL DEFAULT '',
    filler_number text NOT NULL DEFAULT '',
    accession_number text NOT NULL DEFAULT '',
    procedure_code text NOT NULL DEFAULT '',
    procedure_text text NOT NULL DEFAULT '',
    appointment_id uuid,
    result_status text,
    observed_at timestamptz,
    viewer_link text NOT NULL DEFAULT '',
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX rm_orders_patient ON rm_orders (patient_id);
CREATE INDEX rm_orders_accession ON rm_orders (accession_number);

CREATE TABLE rm_unmatched_results (
    id uuid PRIMARY KEY,
    message_id text NOT NULL,
    accession_number text NOT NULL DEFAULT '',
    placer_number text NOT NULL DEFAULT '',
    filler_number text NOT NULL DEFAULT '',
    patient_identifier text NOT NULL DEFAULT '',
    procedure_code text NOT NULL DEFAULT '',
    result_status text NOT NULL DEFAULT '',
    observed_at timestamptz,
    viewer_link text NOT NULL DEFAULT '',
    resolved boolean NOT NULL DEFAULT false,
    kept_at timestamptz NOT NULL
);
CREATE INDEX rm_unmatched_results_open ON rm_unmatched_results (kept_at) WHERE NOT resolved;
