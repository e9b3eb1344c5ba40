-- The PHI access log is append-only (0003): its row trigger refuses UPDATE and DELETE,
-- but TRUNCATE fires no row trigger and emptied the table. Refuse it too.
CREATE TRIGGER phi_access_log_no_truncate BEFORE TRUNCATE ON phi_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION phi_access_log_append_only();
