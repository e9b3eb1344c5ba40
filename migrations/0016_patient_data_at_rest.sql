-- Patient data at rest (issue 9, finding 13).
--
-- Inbound HL7: the raw message is stored encrypted with the event key (AES-256-GCM,
-- the row id as associated data), and duplicates are found by a keyed hash (HMAC-SHA256,
-- key derived from the event key) instead of a plain SHA-256.
--
-- raw_format says how ``raw`` is stored: 0 in clear (rows stored before this migration),
-- 1 sealed. No default: every writer says which. Start-up seals the rows still in clear
-- (it holds the key; SQL does not), filling content_hmac and clearing content_sha256.
ALTER TABLE hl7_inbound ADD COLUMN raw_format smallint NOT NULL DEFAULT 0
    CHECK (raw_format IN (0, 1));
ALTER TABLE hl7_inbound ALTER COLUMN raw_format DROP DEFAULT;
ALTER TABLE hl7_inbound ADD COLUMN content_hmac bytea;
ALTER TABLE hl7_inbound ALTER COLUMN content_sha256 DROP NOT NULL;
ALTER TABLE hl7_inbound
    DROP CONSTRAINT hl7_inbound_sending_application_sending_facility_control_id_key;
-- A duplicate is still the same sender, control id and content.
CREATE UNIQUE INDEX hl7_inbound_duplicate
    ON hl7_inbound (sending_application, sending_facility, control_id, content_hmac);
CREATE INDEX hl7_inbound_in_clear ON hl7_inbound (seq) WHERE raw_format = 0;

-- Results no order claimed keep, for review, the order numbers, accession and status; the
-- patient's MRN stays in the UnmatchedResult's (encrypted) events, not in a read model.
ALTER TABLE rm_unmatched_results DROP COLUMN patient_identifier;
