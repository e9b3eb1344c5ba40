-- The pump's due query (projections.deliveries_view.due) in two ordered parts: deliveries
-- due at once (no next attempt time: a confirmation, an HL7 message) read oldest cause
-- first until enough heads are found, and deliveries given a time (a reminder, a retry,
-- a quiet-hours hold) read by that time. 0027d's one index put every reminder scheduled
-- for the coming weeks in front of the deliveries due now, so each round of the pump
-- stepped over all of them (32 ms a round with 3,600 reminders booked).
DROP INDEX IF EXISTS rm_deliveries_due;
CREATE INDEX rm_deliveries_due_now ON rm_deliveries (channel, cause_at, position)
    WHERE status IN ('queued', 'retrying', 'ambiguous') AND next_attempt_at IS NULL;
CREATE INDEX rm_deliveries_due_later ON rm_deliveries (channel, next_attempt_at)
    WHERE status IN ('queued', 'retrying', 'ambiguous') AND next_attempt_at IS NOT NULL;
