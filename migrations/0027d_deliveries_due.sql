-- The pump's due query (projections.deliveries_view.due) reads pending deliveries in the
-- order they are sent, oldest cause first, and stops once it has found enough heads:
-- its cost follows what it hands out, not the backlog.
CREATE INDEX rm_deliveries_due ON rm_deliveries (channel, cause_at, position)
    WHERE status IN ('queued', 'retrying', 'ambiguous');
