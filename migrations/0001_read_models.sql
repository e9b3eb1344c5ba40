-- Read models of the catalog, appointment history and availability projections.
-- Each projection's tracking table is created by the eventsourcing library.

CREATE TABLE rm_locations (
    id uuid PRIMARY KEY,
    code text NOT NULL,
    name text NOT NULL,
    spec jsonb NOT NULL
);

CREATE TABLE rm_resources (
    id uuid PRIMARY KEY,
    code text NOT NULL,
    location_id uuid NOT NULL,
    modality text NOT NULL,
    spec jsonb NOT NULL
);
CREATE INDEX rm_resources_modality_location ON rm_resources (modality, location_id);

CREATE TABLE rm_appointment_types (
    id uuid PRIMARY KEY,
    code text NOT NULL,
    name text NOT NULL,
    modality text NOT NULL,
    spec jsonb NOT NULL
);

CREATE TABLE rm_appointments (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    status text NOT NULL,
    appointment_type_id uuid NOT NULL,
    location_id uuid NOT NULL,
    resource_id uuid NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    timezone text NOT NULL,
    reason text NOT NULL DEFAULT '',
    version integer NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX rm_appointments_patient ON rm_appointments (patient_id, starts_at);

CREATE TABLE rm_busy (
    calendar_id uuid NOT NULL,
    holder text NOT NULL,
    resource_id uuid NOT NULL,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    PRIMARY KEY (calendar_id, holder)
);
CREATE INDEX rm_busy_resource_time ON rm_busy (resource_id, starts_at, ends_at);
