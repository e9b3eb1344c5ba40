-- Every read of patient data: who, what, when, from where, with what outcome.
-- Append-only: the application role is never granted UPDATE or DELETE on it.
CREATE TABLE phi_access_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor_id text NOT NULL,
    role text NOT NULL,
    patient_id uuid,
    resource text NOT NULL,
    resource_id text NOT NULL DEFAULT '',
    action text NOT NULL,
    outcome text NOT NULL,
    request_id text NOT NULL DEFAULT '',
    client_address text NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT ''
);
CREATE INDEX phi_access_log_patient_at ON phi_access_log (patient_id, at);
CREATE INDEX phi_access_log_actor_at ON phi_access_log (actor_id, at);

CREATE FUNCTION phi_access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'phi_access_log is append-only';
END;
$$;
CREATE TRIGGER phi_access_log_no_change BEFORE UPDATE OR DELETE ON phi_access_log
    FOR EACH ROW EXECUTE FUNCTION phi_access_log_append_only();
