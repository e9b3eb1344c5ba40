-- Several inbound processors, in order per patient (adapters.hl7.processor).
-- lane: which earlier messages this one waits for. NULL: not sorted yet (it waits for
-- everything before it, and everything after it waits for it); '*': the same, for good
-- (a merge, a message naming no patient); otherwise a keyed digest of the patient's
-- identifier (never the identifier itself: it is patient data), and the message waits
-- only for earlier messages of its lane.
ALTER TABLE hl7_inbound ADD COLUMN lane text;

CREATE INDEX hl7_inbound_lane ON hl7_inbound (lane, seq) WHERE status = 'received';
CREATE INDEX hl7_inbound_fence ON hl7_inbound (seq)
    WHERE status = 'received' AND (lane IS NULL OR lane = '*');

-- A message sent back to processing (a replay) wakes the processors at once; the
-- listener wakes them for new messages itself (a NOTIFY per INSERT would serialise the
-- listener's commits).
CREATE FUNCTION hl7_inbound_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hl7_inbound', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER hl7_inbound_replayed AFTER UPDATE OF status ON hl7_inbound
    FOR EACH ROW WHEN (NEW.status = 'received' AND OLD.status <> 'received')
    EXECUTE FUNCTION hl7_inbound_wake();
