-- Issue 10, orders and results for patients: one row per result reference (an order and
-- an accession number; later reports update its status), never report text; and which
-- patient record was merged into which (ADT^A40), so a patient sees the orders and
-- results the RIS placed under a record merged into theirs.

CREATE TABLE rm_results (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    patient_id uuid NOT NULL,
    accession_number text NOT NULL DEFAULT '',
    procedure_code text NOT NULL DEFAULT '',
    procedure_text text NOT NULL DEFAULT '',
    status text NOT NULL,
    observed_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX rm_results_patient ON rm_results (patient_id);

CREATE TABLE rm_patient_merges (
    merged_id uuid PRIMARY KEY,
    survivor_id uuid NOT NULL,
    merged_at timestamptz NOT NULL
);
CREATE INDEX rm_patient_merges_survivor ON rm_patient_merges (survivor_id);
