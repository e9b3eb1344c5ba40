-- Which patient records have a phone number, for SMS opt-out and opt-in (STOP, START):
-- a keyed digest (HMAC-SHA256 under a key derived from the event key) of the number in
-- E.164 per patient record, never the number itself (see 0016). The Registry's encrypted
-- records are checked when the index is read.
CREATE TABLE rm_patient_phones (
    patient_id uuid NOT NULL PRIMARY KEY,
    phone_key text NOT NULL
);
CREATE INDEX rm_patient_phones_key ON rm_patient_phones (phone_key);
