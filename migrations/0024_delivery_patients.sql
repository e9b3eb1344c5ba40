-- Notices to patients in the deliveries read model: whose they are (the patient of a
-- notice delivery, from its payload), when they were due (a reminder), until when quiet
-- hours held them, and when the provider took them. Rows of HL7 deliveries leave them
-- empty. Rows written before this migration get them when the deliveries view is rebuilt.

ALTER TABLE rm_deliveries ADD COLUMN IF NOT EXISTS patient_id uuid;
ALTER TABLE rm_deliveries ADD COLUMN IF NOT EXISTS due_at timestamptz;
ALTER TABLE rm_deliveries ADD COLUMN IF NOT EXISTS held_until timestamptz;
ALTER TABLE rm_deliveries ADD COLUMN IF NOT EXISTS sent_at timestamptz;
CREATE INDEX IF NOT EXISTS rm_deliveries_patient ON rm_deliveries (patient_id, created_at)
    WHERE patient_id IS NOT NULL;
