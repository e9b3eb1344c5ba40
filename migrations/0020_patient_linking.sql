-- Linking patients to the RIS's records (issue 10).
--
-- The staff search by family name and birth date reads this table: a keyed digest
-- (HMAC-SHA256 under a key derived from the event key) of the normalised family name
-- and birth date per patient record, never the values themselves (see 0016). Given
-- names, merges and everything shown are read from the Registry's encrypted events.
CREATE TABLE rm_patient_lookup (
    patient_id uuid NOT NULL,
    lookup_key text NOT NULL,
    PRIMARY KEY (patient_id, lookup_key)
);
CREATE INDEX rm_patient_lookup_key ON rm_patient_lookup (lookup_key);
