-- Events a read model could not apply: parked with their error so that the read model
-- moves on (its tracking record is written in the same transaction). No event state is
-- kept here (it may name a patient): the event stays in the encrypted log, found by its
-- application and notification id.
CREATE TABLE parked_events (
    id bigserial PRIMARY KEY,
    projection text NOT NULL,
    application_name text NOT NULL,
    notification_id bigint NOT NULL,
    topic text NOT NULL,
    error_class text NOT NULL,
    error_message text NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (projection, application_name, notification_id)
);
