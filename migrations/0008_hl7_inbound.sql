-- Inbound HL7 messages: the raw bytes stored before the ACK is sent, then processed once.
CREATE TABLE hl7_inbound (
    id uuid PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,              -- order of arrival
    received_at timestamptz NOT NULL DEFAULT now(),
    peer text NOT NULL DEFAULT '',
    sending_application text NOT NULL,
    sending_facility text NOT NULL,
    control_id text NOT NULL,
    message_type text NOT NULL,
    trigger text NOT NULL,
    version text NOT NULL,
    charset text NOT NULL,
    content_sha256 bytea NOT NULL,
    raw bytea NOT NULL,
    ack_code text NOT NULL,
    ack bytea NOT NULL,                          -- the ACK sent, sent again for a duplicate
    status text NOT NULL CHECK (status IN ('received', 'processed', 'quarantined')),
    outcome text,
    error text,
    processed_at timestamptz,
    duplicates integer NOT NULL DEFAULT 0,
    -- A duplicate is the same sender, control id and content; a reused control id with
    -- other content is a new message.
    UNIQUE (sending_application, sending_facility, control_id, content_sha256)
);

CREATE INDEX hl7_inbound_received ON hl7_inbound (seq) WHERE status = 'received';
CREATE INDEX hl7_inbound_status ON hl7_inbound (status, seq);

-- Who sent a message back to processing, and why.
CREATE TABLE hl7_inbound_replays (
    id bigserial PRIMARY KEY,
    inbound_id uuid NOT NULL REFERENCES hl7_inbound (id),
    replayed_at timestamptz NOT NULL,
    actor_id text NOT NULL,
    actor_role text NOT NULL,
    request_id text NOT NULL DEFAULT '',
    reason text NOT NULL,
    previous_status text NOT NULL,
    previous_error text
);
CREATE INDEX hl7_inbound_replays_inbound ON hl7_inbound_replays (inbound_id);
