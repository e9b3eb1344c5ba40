-- The compliance queries on phi_access_log (GET /v1/audit/access) read newest first,
-- ordered by (at DESC, id DESC), and page with a keyset on (at, id). One index per
-- filter gives each query a single index range scan with no sort, at any table size:
-- by patient, by actor, by time range alone. They replace 0003's (patient_id, at) and
-- (actor_id, at), which lack the id tie-breaker the keyset needs.
CREATE INDEX phi_access_log_patient_recent ON phi_access_log (patient_id, at DESC, id DESC);
CREATE INDEX phi_access_log_actor_recent ON phi_access_log (actor_id, at DESC, id DESC);
CREATE INDEX phi_access_log_recent ON phi_access_log (at DESC, id DESC);
DROP INDEX phi_access_log_patient_at;
DROP INDEX phi_access_log_actor_at;
